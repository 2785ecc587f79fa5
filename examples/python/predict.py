"""Calling retail-api from Python with `requests`: one basket, a batch, and the model's
information. The same calls a FastAPI-era client makes, against the same contract.

    pip install requests
    RETAIL_API_URL=http://localhost:8000 python examples/python/predict.py

With authentication on, set RETAIL_API_TOKEN (a JWT) and it is sent as a Bearer token.
"""

import os

import requests

BASE = os.environ.get("RETAIL_API_URL", "http://localhost:8000")
HEADERS = {"Authorization": f"Bearer {os.environ['RETAIL_API_TOKEN']}"} if os.environ.get("RETAIL_API_TOKEN") else {}

seed = {
    "BASKET_SIZE": "M", "BASKET_TYPE": "MIXED", "STORE_REGION": "LONDON", "STORE_FORMAT": "LS",
    "SPEND": 125.50, "QUANTITY": 3, "PROD_CODE_20": "FOOD", "PROD_CODE_30": "FRESH",
}
items = {"basket_items": {"P1001": {"quantity": 2, "price": 10.99, "category": "grocery"}}, "STORE_REGION": "LONDON"}

with requests.Session() as http:
    http.headers.update(HEADERS)
    answer = http.post(f"{BASE}/predict", json=seed, timeout=10)
    answer.raise_for_status()
    print("predict:", answer.json()["prediction"], answer.json()["probabilities"])

    answer = http.post(f"{BASE}/predict/batch", json={"records": [seed, items]}, timeout=30)
    answer.raise_for_status()
    print("batch:", [p["prediction"] for p in answer.json()["predictions"]])

    # A record the model cannot score: 422, each field listed (and in FastAPI's `detail` shape).
    answer = http.post(f"{BASE}/predict", json={**seed, "SPEND": -3}, timeout=10)
    assert answer.status_code == 422, answer.status_code
    print("invalid:", [(d["loc"], d["msg"]) for d in answer.json()["detail"]])

    info = http.get(f"{BASE}/model/info", timeout=10)
    info.raise_for_status()
    print("model:", info.json()["name"], info.json()["version"])
