#!/usr/bin/env python3
"""Quality and training time of `retail-api train --label` against scikit-learn's
HistGradientBoostingClassifier / Regressor with default settings, on the same splits.

    target/test-venv/bin/python scripts/bench-tabular.py --bin target/release/retail-api \
        [--seeds 5] [--large-rows 1000000] [--skip-large]

Datasets: the ones inside scikit-learn (iris, wine, breast_cancer, digits, diabetes), each over
`--seeds` random 80/20 splits (stratified for classification), and one generated table
(make_classification, 50 columns, 10% of values missing at random, `--large-rows` rows, one
split). Both libraries get the same training CSV rows (scikit-learn as a float array, retail-api
as the CSV file) and are scored on the same test rows: accuracy for classification, R² for
regression. Times: scikit-learn's `fit`; retail-api's training as its manifest records it (fit,
excluding reading the CSV) and the whole `train` command (reading, training, evaluating,
writing). Prints a Markdown table and writes JSON to --json.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "tabular"))
import sklearn_datasets  # noqa: E402


def write_csv(path, x, y, names):
    with open(path, "w") as f:
        f.write(",".join(names + ["target"]) + "\n")
        for row, label in zip(x, y):
            cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
            f.write(",".join(cells) + "," + sklearn_datasets.label_text(label) + "\n")


def retail(bin_path, work, train_csv, test_csv):
    out = os.path.join(work, "model")
    start = time.perf_counter()
    done = subprocess.run(
        [bin_path, "train", "--data", train_csv, "--label", "target", "--test-data", test_csv,
         "--out", out, "--force"],
        check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    return report, wall


def one(bin_path, name, task, x, y, names, seed):
    strat = y if task == "classification" else None
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=strat)
    model = HistGradientBoostingClassifier() if task == "classification" else HistGradientBoostingRegressor()
    start = time.perf_counter()
    model.fit(xtr, ytr)
    sk_fit = time.perf_counter() - start
    pred = model.predict(xte)
    sk_score = accuracy_score(yte, pred) if task == "classification" else r2_score(yte, pred)
    with tempfile.TemporaryDirectory() as work:
        train_csv, test_csv = os.path.join(work, "train.csv"), os.path.join(work, "test.csv")
        write_csv(train_csv, xtr, ytr, names)
        write_csv(test_csv, xte, yte, names)
        report, wall = retail(bin_path, work, train_csv, test_csv)
    metrics = report["test_metrics"]
    ours = metrics["accuracy"] if task == "classification" else metrics["r2"]
    return {"dataset": name, "task": task, "seed": seed, "rows": len(y), "columns": len(names),
            "sklearn_score": sk_score, "sklearn_fit_s": sk_fit,
            "retail_score": ours, "retail_fit_s": report["training"]["seconds"], "retail_command_s": wall,
            "retail_rounds": report["training"]["best_iteration"]}


def large(rows, seed=0):
    from sklearn.datasets import make_classification
    x, y = make_classification(n_samples=rows, n_features=50, n_informative=20, n_redundant=10,
                               n_classes=2, flip_y=0.05, class_sep=0.8, random_state=seed)
    rng = np.random.default_rng(seed)
    x = np.round(x, 5)
    x[rng.random(x.shape) < 0.10] = np.nan
    return x, [str(int(v)) for v in y], [f"x{i}" for i in range(50)]


def summarize(results):
    by = {}
    for r in results:
        by.setdefault(r["dataset"], []).append(r)
    lines = ["| dataset | task | rows × cols | splits | scikit-learn HGB | retail-api | difference (points) | "
             "HGB fit (s) | retail-api fit (s) | retail-api `train` command (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, rs in by.items():
        mean = lambda k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
        metric = "accuracy" if rs[0]["task"] == "classification" else "R²"
        lines.append(
            f"| {name} | {metric} | {rs[0]['rows']:,} × {rs[0]['columns']} | {len(rs)} | "
            f"{mean('sklearn_score'):.4f} | {mean('retail_score'):.4f} | "
            f"{100 * (mean('retail_score') - mean('sklearn_score')):+.2f} | {mean('sklearn_fit_s'):.3f} | "
            f"{mean('retail_fit_s'):.3f} | {mean('retail_command_s'):.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/retail-api")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--large-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--only", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    results = []
    names = args.only.split(",") if args.only else list(sklearn_datasets.DATASETS)
    for name in names:
        if name == "large":
            continue
        x, y, cols, task = sklearn_datasets.load(name)
        for seed in range(args.seeds):
            results.append(one(args.bin, name, task, x, y, cols, seed))
            print(json.dumps(results[-1]), file=sys.stderr)
    if not args.skip_large:
        x, y, cols = large(args.large_rows)
        results.append(one(args.bin, f"generated {args.large_rows:,} rows, 10% missing", "classification",
                           x, y, cols, 0))
        print(json.dumps(results[-1]), file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print(summarize(results))


if __name__ == "__main__":
    main()
