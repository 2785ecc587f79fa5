#!/usr/bin/env python3
"""Reference explanations for the explanation test (crates/cli/tests/cli/explain.rs).

Trains two models on a generated numeric table, exports them to ONNX and writes, per model, the
ONNX file, the training table as CSV (the `import-onnx --data`, so its covers are the training
rows) and shap's path-dependent TreeSHAP values of the first rows:

    lgbm_multiclass   LGBMClassifier, 3 classes, 40 rounds, 15 leaves (onnxmltools, SOFTMAX)
    gbc_binary        scikit-learn GradientBoostingClassifier, 60 trees, depth 3 (skl2onnx, LOGISTIC)

Values are multiples of 1/64 (exact in float32, as ONNX trees compare), so every training row
takes the same path in the ONNX trees as in the trained model. One JSON line per model on
stdout: {"name", "onnx", "csv", "reference"}; the reference file holds {"expected": [per class],
"shap": [row][class][feature]} (a binary model: one class, the log-odds of the positive one).

    target/test-venv/bin/python tests/explain/shap_reference.py OUT_DIR
"""

import json
import sys
from pathlib import Path

import lightgbm
import numpy as np
import shap
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingClassifier

SEED = 5
ROWS = 3000
COLUMNS = 6
EXPLAINED = 300


def table(rng):
    x = np.round(rng.normal(size=(ROWS, COLUMNS)) * 64) / 64
    x[:, 2] = rng.integers(0, 6, size=ROWS)
    score = 1.2 * x[:, 0] - x[:, 1] + 0.4 * x[:, 2] * (x[:, 3] > 0) + np.sin(2 * x[:, 4])
    score = score + rng.normal(scale=0.5, size=ROWS)
    # Column 5 is noise: splits may use it, but it carries nothing.
    return x.astype(np.float32).astype(np.float64), score


def write_csv(path, x, y):
    header = ",".join([f"f{i + 1}" for i in range(COLUMNS)] + ["label"])
    lines = [header] + [",".join([repr(float(v)) for v in row] + [str(int(label))]) for row, label in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")


def per_class(values, classes):
    """shap values as [row][class][feature], whichever layout this shap version returns."""
    if isinstance(values, list):
        return np.stack(values, axis=1)
    values = np.asarray(values)
    if values.ndim == 2:
        return values[:, None, :]
    return np.transpose(values, (0, 2, 1)) if values.shape[2] == classes else values


def reference(model, x, classes):
    explainer = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
    values = per_class(explainer.shap_values(x[:EXPLAINED]), classes)
    expected = np.atleast_1d(explainer.expected_value).tolist()
    return {"expected": expected, "shap": values.tolist()}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    x, score = table(rng)
    initial = [("input", FloatTensorType([None, COLUMNS]))]
    multi = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    lgbm = lightgbm.LGBMClassifier(n_estimators=40, num_leaves=15, learning_rate=0.1, verbose=-1, random_state=SEED)
    lgbm.fit(x, multi)
    binary = (score > np.median(score)).astype(int)
    gbc = GradientBoostingClassifier(n_estimators=60, max_depth=3, learning_rate=0.1, random_state=SEED)
    gbc.fit(x, binary)
    cases = [
        ("lgbm_multiclass", lgbm, multi, 3, lambda: convert_lightgbm(lgbm, initial_types=initial, zipmap=False, target_opset=15)),
        (
            "gbc_binary",
            gbc,
            binary,
            1,
            lambda: to_onnx(gbc, x[:1].astype(np.float32), options={id(gbc): {"zipmap": False}},
                            target_opset={"": 17, "ai.onnx.ml": 3}),
        ),
    ]
    for name, model, labels, classes, export in cases:
        (out / f"{name}.onnx").write_bytes(export().SerializeToString())
        write_csv(out / f"{name}.csv", x, labels)
        (out / f"{name}.json").write_text(json.dumps(reference(model, x, classes)))
        print(json.dumps({"name": name, "onnx": f"{name}.onnx", "csv": f"{name}.csv", "reference": f"{name}.json"}))


if __name__ == "__main__":
    main()
