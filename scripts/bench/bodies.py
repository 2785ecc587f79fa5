#!/usr/bin/env python3
"""Writes the HTTP benchmark's request bodies: a wrk Lua script cycling through 1000 /predict
bodies (flat records and basket_items, drawn from the default model's vocabulary with a fixed
seed) and a batch body of ROWS records (default 10,000, about 1.8 MB).

    python3 scripts/bench/bodies.py OUT_DIR [ROWS]
"""
import json
import random
import sys

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
rng = random.Random(7)
vocab = {
    "BASKET_SIZE": ["S", "M", "L"],
    "BASKET_TYPE": ["FRESH", "GROCERY", "NONFOOD", "MIXED", "XX"],
    "STORE_REGION": ["LONDON", "SOUTH_EAST", "EAST", "SOUTH_WEST", "MIDLANDS", "NORTH_WEST", "NORTH_EAST", "YORKSHIRE", "SCOTLAND", "WALES"],
    "STORE_FORMAT": ["LS", "MS", "SS", "XLS"],
    "PROD_CODE_20": ["FOOD", "DRINKS", "HOUSEHOLD", "HEALTH_BEAUTY", "BABY", "PET", "GENERAL"],
    "PROD_CODE_30": ["FRESH", "MEAT_FISH", "DAIRY", "BAKERY", "GROCERY", "FROZEN", "SOFT_DRINKS", "WINE_SPIRITS", "CLEANING", "TOILETRIES", "ELECTRONICS"],
}


def flat():
    record = {k: rng.choice(v) for k, v in vocab.items()}
    quantity = rng.randint(1, 40)
    record["QUANTITY"] = quantity
    record["SPEND"] = round(quantity * rng.uniform(0.5, 8.0), 2)
    return record


def items():
    n = rng.randint(1, 12)
    return {
        "basket_items": {
            f"P{i}": {"product_id": f"P{i}", "quantity": rng.randint(1, 3), "price": round(rng.uniform(0.3, 20), 2), "category": rng.choice(vocab["PROD_CODE_30"]).lower()}
            for i in range(n)
        },
        "STORE_REGION": rng.choice(vocab["STORE_REGION"]),
        "STORE_FORMAT": rng.choice(vocab["STORE_FORMAT"]),
    }


bodies = [json.dumps(flat() if i % 4 else items()) for i in range(1000)]
with open(f"{out}/mix.lua", "w") as f:
    f.write("wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nlocal bodies = {\n")
    for b in bodies:
        f.write("  [==[" + b + "]==],\n")
    f.write("}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n")
with open(f"{out}/batch.json", "w") as f:
    json.dump({"records": [flat() for _ in range(rows)]}, f)
