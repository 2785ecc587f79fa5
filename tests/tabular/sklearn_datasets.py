#!/usr/bin/env python3
"""Exports the datasets that ship inside scikit-learn to CSV, for `retail-api train --label`.

    python3 tests/tabular/sklearn_datasets.py OUT_DIR [--split SEED]

Writes OUT_DIR/<name>.csv for iris, wine, breast_cancer, digits (classification; the label
column `target` holds the class names where scikit-learn has them) and diabetes (regression).
Columns keep scikit-learn's feature names (made CSV-safe). With --split SEED it also writes
<name>.train.csv and <name>.test.csv: a random 80/20 split (stratified for classification) that
the benchmark gives both scikit-learn and retail-api. Prints a JSON line per dataset.
"""

import argparse
import csv
import json
import os
import re

from sklearn import datasets
from sklearn.model_selection import train_test_split

DATASETS = {
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "digits": (datasets.load_digits, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}


def safe(name):
    return re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_")


def load(name):
    loader, task = DATASETS[name]
    bunch = loader()
    names = [safe(n) for n in getattr(bunch, "feature_names", [f"x{i}" for i in range(bunch.data.shape[1])])]
    if task == "classification" and getattr(bunch, "target_names", None) is not None and name != "digits":
        target = [safe(bunch.target_names[int(t)]) for t in bunch.target]
    else:
        target = list(bunch.target)
    return bunch.data, target, names, task


def label_text(y):
    """A label as CSV text: strings as they are, integral numbers without a fraction."""
    if isinstance(y, str):
        return y
    y = float(y)
    return str(int(y)) if y.is_integer() else repr(y)


def write(path, data, target, names):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(names + ["target"])
        for row, y in zip(data, target):
            w.writerow([repr(float(v)) for v in row] + [label_text(y)])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--split", type=int, default=None)
    parser.add_argument("--only", default=None, help="comma-separated dataset names")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in (args.only.split(",") if args.only else DATASETS):
        data, target, names, task = load(name)
        write(os.path.join(args.out, f"{name}.csv"), data, target, names)
        if args.split is not None:
            strat = target if task == "classification" else None
            xtr, xte, ytr, yte = train_test_split(data, target, test_size=0.2, random_state=args.split, stratify=strat)
            write(os.path.join(args.out, f"{name}.train.csv"), xtr, ytr, names)
            write(os.path.join(args.out, f"{name}.test.csv"), xte, yte, names)
        print(json.dumps({"dataset": name, "task": task, "rows": len(target), "columns": len(names),
                          "first": [float(v) for v in data[0]]}))


if __name__ == "__main__":
    main()
