#!/usr/bin/env python3
"""Turns payload captures (JSON Lines written with CAPTURE_SAMPLE_PERCENT / CAPTURE_URI) and labels
that arrived later into the CSV `retail-api evaluate --data` reads.

    scripts/capture-to-csv.py --captures DIR_OR_FILES... --labels labels.csv --out eval.csv [--tabular]

`labels.csv` has a header with `request_id` and `label`. Only successful single-record captures
(`/predict`, `/models/{name}/predict`, `/predict-single`, status 200) with a label are kept.

- Basket classifier (default): the seed's flat record becomes one transaction line of the dunnhumby
  header (its basket totals; BASKET_ID = the request id), labelled BASKET_PRICE_SENSITIVITY.
- `--tabular`: `{"features": {"col": value, ...}}` becomes a row of those columns plus the label
  column (`--label-column`, the model's target; default `label`).
Records in the `basket_items` shape, positional tabular rows and batches are skipped (counted).
Only the standard library is used.
"""

import argparse
import csv
import json
import pathlib
import sys

HEADER = ("SHOP_WEEK,SHOP_DATE,SHOP_WEEKDAY,SHOP_HOUR,QUANTITY,SPEND,PROD_CODE,PROD_CODE_10,PROD_CODE_20,"
          "PROD_CODE_30,PROD_CODE_40,CUST_CODE,CUST_PRICE_SENSITIVITY,CUST_LIFESTAGE,BASKET_ID,BASKET_SIZE,"
          "BASKET_PRICE_SENSITIVITY,BASKET_TYPE,BASKET_DOMINANT_MISSION,STORE_CODE,STORE_FORMAT,STORE_REGION").split(",")
FLAT = ["QUANTITY", "SPEND", "PROD_CODE_20", "PROD_CODE_30", "BASKET_SIZE", "BASKET_TYPE", "STORE_FORMAT",
        "STORE_REGION"]
SINGLE_ROUTES = {"/predict", "/models/{name}/predict", "/predict-single"}


def capture_lines(paths):
    for path in map(pathlib.Path, paths):
        files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
        for file in files:
            with open(file, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)


def row_of(record, label, args):
    features = record.get("input")
    if not isinstance(features, dict):
        return None
    if args.tabular:
        features = features.get("features")
        if not isinstance(features, dict):
            return None
        return {**{k: "" if v is None else v for k, v in features.items()}, args.label_column: label}
    if any(k not in features for k in FLAT):
        return None
    row = {column: "" for column in HEADER}
    row.update({k: features[k] for k in FLAT})
    row["BASKET_ID"] = record["request_id"]
    row["BASKET_PRICE_SENSITIVITY"] = label
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captures", nargs="+", required=True, help="capture directories or .jsonl files")
    parser.add_argument("--labels", required=True, help="CSV with request_id and label columns")
    parser.add_argument("--out", required=True)
    parser.add_argument("--tabular", action="store_true", help="captures of a tabular model")
    parser.add_argument("--label-column", default="label", help="tabular: the model's target column")
    args = parser.parse_args()
    with open(args.labels, newline="", encoding="utf-8") as f:
        labels = {r["request_id"]: r["label"] for r in csv.DictReader(f)}
    rows, skipped, unlabelled = [], 0, 0
    for record in capture_lines(args.captures):
        if record.get("status") != 200 or record.get("route") not in SINGLE_ROUTES:
            skipped += 1
        elif record.get("request_id") not in labels:
            unlabelled += 1
        elif (row := row_of(record, labels[record["request_id"]], args)) is None:
            skipped += 1
        else:
            rows.append(row)
    if not rows:
        sys.exit(f"no labelled single-record captures ({skipped} skipped, {unlabelled} without a label)")
    columns = HEADER if not args.tabular else list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} rows written to {args.out} ({skipped} skipped, {unlabelled} without a label)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
