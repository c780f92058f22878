"""The example model server (Flask): an ordinary predict handler, plus one line.

gunicorn -w 2 app:app        # or: flask --app app run
"""

import pickle
from pathlib import Path

from flask import Flask, request

from boxkite_middleware import BoxkiteWSGIMiddleware

HERE = Path(__file__).parent
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
model = pickle.loads((HERE / "model.pkl").read_bytes())

app = Flask(__name__)


@app.post("/predict")
def predict():
    row = request.get_json()
    return {"result": float(model.predict([[row[name] for name in FEATURES]])[0])}


@app.post("/v1/models/diabetes:predict")
def predict_batch():
    rows = request.get_json()["instances"]
    return {"predictions": model.predict(rows).tolist()}


# The one line: watch the routes in boxkite.yaml and serve /metrics.
app.wsgi_app = BoxkiteWSGIMiddleware(app.wsgi_app, config=HERE / "boxkite.yaml")
