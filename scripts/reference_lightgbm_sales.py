#!/usr/bin/env python3
"""Reference measurement: Python LightGBM (objective=poisson) on the synthetic sales dataset.

The counterpart of scripts/reference_lightgbm.py for the sales forecast: the same rows, the same
time-based split as `retail-api train` (the last 28 days are the test split, the 28 before them
validation for early stopping, everything earlier training), and the test split's Bayes values
from the truth sidecar. It is a measurement tool, not part of the product.

    mkdir -p /tmp/ref
    python3 -m venv /tmp/ref/venv
    /tmp/ref/venv/bin/pip install lightgbm pandas numpy
    target/release/retail-api gen-data --kind sales --out /tmp/ref/s.csv --truth /tmp/ref/st.csv
    /tmp/ref/venv/bin/python scripts/reference_lightgbm_sales.py --data /tmp/ref/s.csv --truth /tmp/ref/st.csv

Features are what a LightGBM user would give it from the raw columns: store_id and product_id as
LightGBM categoricals (its own high-cardinality handling), price, promotion, price relative to
the product's median non-promotion training price, day of week, month, day of year, and the
holiday calendar the generator uses (New Year, Good Friday, Easter Monday, Christmas, Boxing Day)
as a category. Prints a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import time

import lightgbm as lgb
import numpy as np
import pandas as pd

TEST_DAYS = 28
VALIDATION_DAYS = 28
KEYS = ["store_id", "product_id", "date"]


def easter(year: int) -> dt.date:
    """Western Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l) // 451
    month = (h + l - 7 * m + 114) // 31
    day = (h + l - 7 * m + 114) % 31 + 1
    return dt.date(year, month, day)


def holidays(years) -> dict:
    out = {}
    for y in years:
        e = easter(y)
        out[dt.date(y, 1, 1)] = 1
        out[e - dt.timedelta(days=2)] = 2
        out[e + dt.timedelta(days=1)] = 3
        out[dt.date(y, 12, 25)] = 4
        out[dt.date(y, 12, 26)] = 5
    return out


def metrics(y: np.ndarray, mu: np.ndarray) -> dict:
    mu = np.maximum(mu, 1e-300)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    deviance = float(np.mean(2 * (term - (y - mu))))
    return {
        "poisson_deviance": deviance,
        "rmse": float(np.sqrt(np.mean((y - mu) ** 2))),
        "mae": float(np.mean(np.abs(y - mu))),
        "wape": float(np.sum(np.abs(y - mu)) / np.sum(y)),
        "bias": float(np.sum(mu) / np.sum(y) - 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--truth", required=True)
    args = parser.parse_args()
    data = pd.read_csv(args.data)
    truth = pd.read_csv(args.truth)
    data = data.merge(truth, on=KEYS, how="left", validate="one_to_one")
    dates = pd.to_datetime(data["date"])
    last = dates.max()
    test = dates > last - pd.Timedelta(days=TEST_DAYS)
    valid = ~test & (dates > last - pd.Timedelta(days=TEST_DAYS + VALIDATION_DAYS))
    train = ~test & ~valid
    calendar = holidays(range(dates.dt.year.min(), dates.dt.year.max() + 1))
    reference = data[train & (data["promotion"] == 0)].groupby("product_id")["price"].median()
    features = pd.DataFrame({
        "store_id": data["store_id"].astype("category"),
        "product_id": data["product_id"].astype("category"),
        "price": data["price"],
        "promotion": data["promotion"],
        "relative_price": data["price"] / data["product_id"].map(reference).fillna(data["price"]),
        "day_of_week": dates.dt.day_of_week,
        "month": dates.dt.month,
        "day_of_year": dates.dt.day_of_year,
        "holiday": pd.Categorical([calendar.get(d, 0) for d in dates.dt.date]),
    })
    y = data["units"].to_numpy(dtype=float)
    params = {
        "objective": "poisson", "metric": "poisson", "learning_rate": 0.1, "num_leaves": 63,
        "min_data_in_leaf": 200, "max_cat_to_onehot": 4, "cat_smooth": 10, "verbose": -1, "seed": 7,
        "num_threads": os.cpu_count(),
    }
    started = time.perf_counter()
    booster = lgb.train(
        params,
        lgb.Dataset(features[train], y[train]),
        num_boost_round=3000,
        valid_sets=[lgb.Dataset(features[valid], y[valid])],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    seconds = time.perf_counter() - started
    predicted = booster.predict(features[test], num_iteration=booster.best_iteration)
    model = metrics(y[test], predicted)
    bayes = metrics(y[test], data.loc[test, "expected_units"].to_numpy(dtype=float))
    print(json.dumps({
        "lightgbm": lgb.__version__,
        "rows": {"train": int(train.sum()), "validation": int(valid.sum()), "test": int(test.sum())},
        "best_iteration": booster.best_iteration,
        "train_seconds": round(seconds, 1),
        "load_average": os.getloadavg()[0],
        "model": model,
        "bayes": bayes,
        "gap": {
            "deviance_percent": 100 * (model["poisson_deviance"] / bayes["poisson_deviance"] - 1),
            "wape_points": 100 * (model["wape"] - bayes["wape"]),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
