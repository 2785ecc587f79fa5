#!/usr/bin/env python3
"""Reference measurement: Python LightGBM on the synthetic basket dataset.

Gives a point of comparison (quality, training time, prediction speed) for our own GBDT. It is
a measurement tool, not part of the product: nothing in the Rust code depends on it.

Setup and run, from the repository root (scratch files live outside the repository):

    mkdir -p /tmp/ref
    python3 -m venv /tmp/ref/venv
    /tmp/ref/venv/bin/pip install lightgbm pandas numpy
    target/release/retail-api gen-data --baskets 200000 --seed 7 --out /tmp/ref/d.csv --truth /tmp/ref/t.csv
    target/release/retail-api gen-data --baskets 50000 --seed 8 --out /tmp/ref/h.csv --truth /tmp/ref/ht.csv
    /tmp/ref/venv/bin/python scripts/reference_lightgbm.py \
        --train /tmp/ref/d.csv --test /tmp/ref/h.csv --test-truth /tmp/ref/ht.csv

What it does:
  1. Aggregates each transaction-line CSV to one row per basket: summed SPEND and QUANTITY,
     UNIT_PRICE = SPEND / QUANTITY, the department (PROD_CODE_20) and commodity group
     (PROD_CODE_30) with the largest summed spend (ties: alphabetically smallest), and the
     basket-level columns BASKET_SIZE, BASKET_TYPE, STORE_REGION, STORE_FORMAT. Baskets
     labelled XX are dropped.
  2. Splits the training baskets by customer (about 10% of customers, chosen by a stable hash;
     a basket without a customer is its own group) into a validation set for early stopping.
  3. Trains LightGBM multiclass (LA, MM, UM) in two configurations and evaluates each on the
     test file: accuracy, macro-F1, log loss, top-label ECE (15 equal-width bins), next to the
     Bayes-optimal scores from the test file's true class probabilities; plus training time,
     tree counts, batch prediction throughput and single-row prediction latency.
  4. Prints a JSON summary on stdout (progress goes to stderr).

Timings are only meaningful on an otherwise idle machine: LightGBM's OpenMP threads stall badly
when another process competes for the cores (single iterations then take seconds). The summary
records the load average at start; each configuration is fitted FIT_REPEATS times (the models
are identical) and the fastest fit is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import zlib

import lightgbm as lgb
import numpy as np
import pandas as pd

CLASSES = ["LA", "MM", "UM"]
CATEGORICAL = ["PROD_CODE_20", "PROD_CODE_30", "BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT"]
NUMERIC = ["SPEND", "QUANTITY", "UNIT_PRICE"]
BASKET_COLUMNS = ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT", "BASKET_PRICE_SENSITIVITY", "CUST_CODE"]
LABEL = "BASKET_PRICE_SENSITIVITY"

VALIDATION_PERCENT = 10
EARLY_STOPPING_ROUNDS = 20
MAX_ROUNDS = 5000
SEED = 42
THREADS = 2
ECE_BINS = 15
FIT_REPEATS = 3
LATENCY_CALLS = 1000

CONFIGS = {
    "a_lr0.1_leaves31": {"learning_rate": 0.1, "num_leaves": 31, "max_depth": -1},
    "b_lr0.3_leaves31_depth5": {"learning_rate": 0.3, "num_leaves": 31, "max_depth": 5},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Data


def read_lines(path: str) -> pd.DataFrame:
    """Reads the columns the baskets need; text stays text (an empty CUST_CODE is "")."""
    text = ["PROD_CODE_20", "PROD_CODE_30", *BASKET_COLUMNS]
    dtypes = {column: str for column in text}
    dtypes.update({"BASKET_ID": "int64", "SPEND": "float64", "QUANTITY": "float64"})
    return pd.read_csv(path, usecols=list(dtypes), dtype=dtypes, keep_default_na=False, na_filter=False)


def top_by_spend(lines: pd.DataFrame, column: str) -> pd.Series:
    """Per basket, the value of `column` with the largest summed SPEND (ties: smallest value)."""
    spend = lines.groupby(["BASKET_ID", column], sort=False, as_index=False)["SPEND"].sum()
    spend = spend.sort_values(["BASKET_ID", "SPEND", column], ascending=[True, False, True], kind="mergesort")
    return spend.drop_duplicates("BASKET_ID").set_index("BASKET_ID")[column]


def baskets_from_lines(path: str) -> pd.DataFrame:
    """One row per basket (indexed by BASKET_ID, sorted), XX labels dropped."""
    lines = read_lines(path)
    grouped = lines.groupby("BASKET_ID", sort=True)
    constant = grouped[BASKET_COLUMNS].nunique()
    if (constant > 1).any().any():
        bad = constant.columns[(constant > 1).any()].tolist()
        raise ValueError(f"{path}: basket-level columns vary within a basket: {bad}")
    baskets = grouped[BASKET_COLUMNS].first()
    baskets["SPEND"] = grouped["SPEND"].sum()
    baskets["QUANTITY"] = grouped["QUANTITY"].sum()
    baskets["UNIT_PRICE"] = baskets["SPEND"] / baskets["QUANTITY"].where(baskets["QUANTITY"] != 0)
    baskets["PROD_CODE_20"] = top_by_spend(lines, "PROD_CODE_20")
    baskets["PROD_CODE_30"] = top_by_spend(lines, "PROD_CODE_30")
    return baskets[baskets[LABEL] != "XX"].copy()


def features(baskets: pd.DataFrame, categories: dict[str, pd.Index]) -> pd.DataFrame:
    """The model's input: numeric columns, then categoricals with the training file's categories."""
    frame = baskets[NUMERIC].astype("float64").copy()
    for column in CATEGORICAL:
        frame[column] = pd.Categorical(baskets[column], categories=categories[column])
    return frame


def labels(baskets: pd.DataFrame) -> np.ndarray:
    return baskets[LABEL].map({name: index for index, name in enumerate(CLASSES)}).to_numpy(np.int32)


def is_validation(baskets: pd.DataFrame) -> np.ndarray:
    """About VALIDATION_PERCENT% of customers, by a stable hash of the customer (or basket) key."""
    keys = np.where(baskets["CUST_CODE"] != "", "cust:" + baskets["CUST_CODE"], "basket:" + baskets.index.astype(str))
    return np.array([zlib.crc32(key.encode()) % 100 < VALIDATION_PERCENT for key in keys])


# ---------------------------------------------------------------------------------------------
# Metrics


def accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(y == predicted))


def macro_f1(y: np.ndarray, predicted: np.ndarray) -> float:
    scores = []
    for k in range(len(CLASSES)):
        tp = np.sum((predicted == k) & (y == k))
        fp = np.sum((predicted == k) & (y != k))
        fn = np.sum((predicted != k) & (y == k))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def top_label_ece(y: np.ndarray, proba: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins (lo, hi] of (count/N) * |accuracy - mean confidence|."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(np.float64)
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    predicted = proba.argmax(axis=1)
    return {
        "accuracy": accuracy(y, predicted),
        "macro_f1": macro_f1(y, predicted),
        "log_loss": log_loss(y, proba),
        "ece_top_label_15": top_label_ece(y, proba),
    }


# ---------------------------------------------------------------------------------------------
# Training and timing


def params_for(config: dict) -> dict:
    return {
        "objective": "multiclass",
        "num_class": len(CLASSES),
        "metric": "multi_logloss",
        "num_threads": THREADS,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        **config,
    }


def fit_once(params: dict, train_x, train_y, valid_x, valid_y) -> tuple[lgb.Booster, int, dict[str, float]]:
    """One timed fit: binning the datasets, then boosting with early stopping."""
    history: dict = {}
    start = time.perf_counter()
    train_set = lgb.Dataset(train_x, train_y, params=params, categorical_feature=CATEGORICAL)
    valid_set = lgb.Dataset(valid_x, valid_y, reference=train_set, categorical_feature=CATEGORICAL)
    train_set.construct()
    valid_set.construct()
    constructed = time.perf_counter()
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=MAX_ROUNDS,
        valid_sets=[valid_set],
        valid_names=["validation"],
        callbacks=[
            lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False),
            lgb.record_evaluation(history),
        ],
    )
    finished = time.perf_counter()
    # lgb.train keeps only the trees up to the best iteration; the history shows how many ran.
    iterations_run = len(history["validation"]["multi_logloss"])
    timing = {"fit": finished - start, "construct": constructed - start, "boost": finished - constructed}
    return booster, iterations_run, timing


def train(name: str, config: dict, train_x, train_y, valid_x, valid_y) -> tuple[lgb.Booster, dict]:
    """Fits FIT_REPEATS times (the result is deterministic) and reports the fastest fit."""
    params = params_for(config)
    runs = [fit_once(params, train_x, train_y, valid_x, valid_y) for _ in range(FIT_REPEATS)]
    models = {booster.model_to_string() for booster, _, _ in runs}
    if len(models) != 1:
        raise RuntimeError(f"{name}: repeated fits produced different models")
    booster, iterations_run, _ = runs[0]
    fastest = min((timing for _, _, timing in runs), key=lambda timing: timing["fit"])
    log(f"{name}: best iteration {booster.best_iteration} of {iterations_run}, fastest fit {fastest['fit']:.2f}s")
    return booster, {
        "params": {key: params[key] for key in ("learning_rate", "num_leaves", "max_depth")},
        "fit_seconds": fastest["fit"],
        "fit_seconds_all_runs": [timing["fit"] for _, _, timing in runs],
        "dataset_construct_seconds": fastest["construct"],
        "boosting_seconds": fastest["boost"],
        "best_iteration": booster.best_iteration,
        "iterations_run": iterations_run,
        "trees_in_model": booster.num_trees(),
        "validation_log_loss_at_best": booster.best_score["validation"]["multi_logloss"],
    }


def as_codes(x: pd.DataFrame) -> np.ndarray:
    """The float64 matrix LightGBM sees: categories as their codes, unknown as NaN."""
    codes = x.copy()
    for column in CATEGORICAL:
        codes[column] = codes[column].cat.codes.replace(-1, np.nan)
    return codes.to_numpy(np.float64)


def best_seconds(action, repeats: int = 3) -> float:
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def batch_throughput(booster: lgb.Booster, x: pd.DataFrame) -> dict[str, float]:
    """Best of 3 batch predictions of every row (best iteration, THREADS threads).

    `rows_per_second` passes the pandas DataFrame (includes pandas' categorical conversion);
    `rows_per_second_numpy` passes the float64 code matrix (LightGBM's own cost).
    """
    codes = as_codes(x)
    if not np.array_equal(booster.predict(x), booster.predict(codes)):
        raise RuntimeError("DataFrame and code-matrix predictions differ")
    seconds = best_seconds(lambda: booster.predict(x, num_threads=THREADS))
    seconds_numpy = best_seconds(lambda: booster.predict(codes, num_threads=THREADS))
    return {
        "rows": len(x),
        "seconds": seconds,
        "rows_per_second": len(x) / seconds,
        "seconds_numpy": seconds_numpy,
        "rows_per_second_numpy": len(x) / seconds_numpy,
    }


def single_row_latency(booster: lgb.Booster, x: pd.DataFrame) -> dict[str, float]:
    """Median latency of predicting one row (one thread), over LATENCY_CALLS different rows.

    `dataframe_us` passes a one-row pandas DataFrame (includes pandas' categorical conversion);
    `numpy_us` passes a float64 row with categories already as codes (LightGBM's own cost).
    """
    rows = x.iloc[:LATENCY_CALLS]
    codes = as_codes(rows)

    def median_us(predict_one) -> float:
        for i in range(20):  # warm-up
            predict_one(i)
        timings = []
        for i in range(len(rows)):
            start = time.perf_counter()
            predict_one(i)
            timings.append(time.perf_counter() - start)
        return statistics.median(timings) * 1e6

    return {
        "calls": len(rows),
        "dataframe_us": median_us(lambda i: booster.predict(rows.iloc[i : i + 1], num_threads=1)),
        "numpy_us": median_us(lambda i: booster.predict(codes[i : i + 1], num_threads=1)),
    }


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="training transaction-line CSV")
    parser.add_argument("--test", required=True, help="held-out transaction-line CSV")
    parser.add_argument("--test-truth", required=True, help="truth sidecar of the held-out CSV")
    args = parser.parse_args()
    load_at_start = os.getloadavg()

    log("aggregating baskets")
    start = time.perf_counter()
    train_baskets = baskets_from_lines(args.train)
    test_baskets = baskets_from_lines(args.test)
    aggregate_seconds = time.perf_counter() - start

    categories = {column: pd.Index(sorted(train_baskets[column].unique())) for column in CATEGORICAL}
    unseen = {column: int((~test_baskets[column].isin(categories[column])).sum()) for column in CATEGORICAL}

    validation = is_validation(train_baskets)
    x_all, y_all = features(train_baskets, categories), labels(train_baskets)
    train_x, train_y = x_all[~validation], y_all[~validation]
    valid_x, valid_y = x_all[validation], y_all[validation]
    test_x, test_y = features(test_baskets, categories), labels(test_baskets)

    truth = pd.read_csv(args.test_truth, dtype={"BASKET_ID": "int64"}, keep_default_na=False).set_index("BASKET_ID")
    truth = truth.reindex(test_baskets.index)
    if truth["P_LA"].isna().any():
        raise ValueError("truth sidecar lacks some test baskets")
    if not (truth[LABEL] == test_baskets[LABEL]).all():
        raise ValueError("truth sidecar labels disagree with the test file")
    bayes_proba = truth[["P_LA", "P_MM", "P_UM"]].to_numpy(np.float64)

    models = {}
    for name, config in CONFIGS.items():
        booster, report = train(name, config, train_x, train_y, valid_x, valid_y)
        report["test"] = scores(test_y, booster.predict(test_x, num_threads=THREADS))
        report["batch_predict"] = batch_throughput(booster, test_x)
        report["single_row_latency"] = single_row_latency(booster, test_x)
        models[name] = report

    summary = {
        "versions": {
            "python": platform.python_version(),
            "lightgbm": lgb.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
        },
        "data": {
            "train_file": args.train,
            "test_file": args.test,
            "train_baskets": len(train_baskets),
            "fit_baskets": int((~validation).sum()),
            "validation_baskets": int(validation.sum()),
            "validation_customers": int(train_baskets.loc[validation & (train_baskets["CUST_CODE"] != "").to_numpy(), "CUST_CODE"].nunique()),
            "test_baskets": len(test_baskets),
            "test_unseen_category_rows": unseen,
            "train_class_counts": dict(zip(CLASSES, np.bincount(y_all, minlength=3).tolist())),
            "test_class_counts": dict(zip(CLASSES, np.bincount(test_y, minlength=3).tolist())),
            "aggregate_seconds": aggregate_seconds,
        },
        "load_average_at_start": load_at_start,
        "bayes_optimal_test": scores(test_y, bayes_proba),
        "models": models,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
