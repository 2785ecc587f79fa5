"""Calls the API through a client generated from its /openapi.json (openapi-python-client):
the seed's flat record and a basket_items basket go through the generated models, and the
answers come back as typed models. A schema that does not match the wire (a wrapper around the
record, a wrong field type, an undocumented status) makes a call or a parse here fail.

    python generated_client.py PACKAGE   (RETAIL_API_URL: the server)
"""

import importlib
import os
import sys

package = sys.argv[1]
client_module = importlib.import_module(package)
predict = importlib.import_module(f"{package}.api.predict.predict")
batch = importlib.import_module(f"{package}.api.predict.batch")
info = importlib.import_module(f"{package}.api.model.info")
models = importlib.import_module(f"{package}.models")

client = client_module.Client(base_url=os.environ["RETAIL_API_URL"], raise_on_unexpected_status=True)

seed = models.FlatRecord(
    basket_size="M", basket_type="MIXED", store_region="LONDON", store_format="LS",
    spend=125.50, quantity=3, prod_code_20="FOOD", prod_code_30="FRESH",
)
answer = predict.sync(client=client, body=seed)
assert isinstance(answer, models.PredictionResponse), f"not a PredictionResponse: {answer!r}"
assert answer.prediction in ("LA", "MM", "UM"), answer
probabilities = answer.probabilities.additional_properties
assert set(probabilities) == {"LA", "MM", "UM"} and abs(sum(probabilities.values()) - 1) < 1e-9, probabilities
assert answer.warnings == [] and answer.request_id, answer

items = models.BasketItemsRequestBasketItems()
items.additional_properties = {
    "P1001": models.BasketItemSchema(quantity=2, price=10.99, category="grocery"),
    "P2002": models.BasketItemSchema(quantity="1", price="25.50", category="electronics"),
}
basket = models.BasketItemsRequest(basket_items=items, store_region="LONDON", store_format="LS")
answer = predict.sync(client=client, body=basket)
assert isinstance(answer, models.PredictionResponse), f"not a PredictionResponse: {answer!r}"

invalid = models.FlatRecord(
    basket_size="M", basket_type="MIXED", store_region="LONDON", store_format="LS",
    spend=-3, quantity=3, prod_code_20="FOOD", prod_code_30="FRESH",
)
error = predict.sync(client=client, body=invalid)
assert isinstance(error, models.ErrorBody) and error.code == "invalid_input", error
assert [d.loc for d in error.detail] == [["body", "SPEND"]], error.detail

answers = batch.sync(client=client, body=models.BatchRequest(records=[seed, basket]))
assert isinstance(answers, models.BatchResponse) and len(answers.predictions) == 2, answers

model = info.sync(client=client)
assert model.additional_properties["name"] == "retail-price-sensitivity", model
print("generated client: /predict (flat, basket_items, 422), /predict/batch, /model/info: ok")
