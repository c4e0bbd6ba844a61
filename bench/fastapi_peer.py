"""The benchmark's FastAPI peer: the same model behind the least code that serves it.

No authentication, no validation beyond JSON, no capture: what a minimal app costs, so the
endpoint's own work shows in the comparison.

    PEER_MODEL_DIR=<a downloaded MLflow model> uvicorn bench.fastapi_peer:app
"""

from __future__ import annotations

import os

import mlflow
import pandas as pd
from fastapi import FastAPI

app = FastAPI()
model = mlflow.sklearn.load_model(os.environ["PEER_MODEL_DIR"])


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(record: dict[str, object]) -> dict[str, float]:
    return {"probability": float(model.predict_proba(pd.DataFrame([record]))[0, 1])}
