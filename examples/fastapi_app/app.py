"""The example model server (FastAPI): an ordinary predict handler, plus one line.

uvicorn app:app --port 8000
"""

import pickle
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

from boxkite_middleware import BoxkiteASGIMiddleware

HERE = Path(__file__).parent
model = pickle.loads((HERE / "model.pkl").read_bytes())


class Patient(BaseModel):
    age: float
    sex: float
    bmi: float
    bp: float
    s1: float
    s2: float
    s3: float
    s4: float
    s5: float
    s6: float


class Batch(BaseModel):
    instances: list[list[float]]


app = FastAPI()


@app.post("/predict")
def predict(patient: Patient) -> dict[str, float]:
    return {"result": float(model.predict([list(patient.model_dump().values())])[0])}


@app.post("/v1/models/diabetes:predict")
def predict_batch(batch: Batch) -> dict[str, list[float]]:
    return {"predictions": model.predict(batch.instances).tolist()}


# The one line: watch the routes in boxkite.yaml and serve /metrics.
app.add_middleware(BoxkiteASGIMiddleware, config=HERE / "boxkite.yaml")
