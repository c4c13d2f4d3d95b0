"""A FastAPI service that records every prediction with Vigil.

    pip install vigil-sdk fastapi uvicorn
    VIGIL_KAFKA=127.0.0.1:9092 uvicorn examples.fastapi_app:app

Two ways, both here: the ``vigil.monitor`` decorator on the predict
function (features in, score out, latency timed), and a Starlette
middleware that records every request's latency and status per route as
the model "http" (a service-level view beside the model's own events).
The producer is created once per worker process at start-up and closed at
shutdown (gunicorn/uvicorn workers each get their own; a producer created
before a fork also works: it restarts itself in the child).
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import asynccontextmanager
from typing import Any, Dict

from fastapi import FastAPI, Request
from starlette.middleware.base import BaseHTTPMiddleware

import vigil

producer = vigil.Producer(
    brokers=os.environ.get("VIGIL_KAFKA", "127.0.0.1:9092"),
    topic=os.environ.get("VIGIL_TOPIC", "vigil.predictions"),
)


class VigilMiddleware(BaseHTTPMiddleware):
    """Records one event per request: route and status as segments, the
    request latency, and the status code as the prediction's label."""

    def __init__(self, app: Any, producer: vigil.Producer, model: str = "http") -> None:
        super().__init__(app)
        self.producer = producer
        self.model = model

    async def dispatch(self, request: Request, call_next: Any) -> Any:
        t0 = time.perf_counter()
        response = await call_next(request)
        self.producer.record(
            self.model,
            features={"path": request.url.path, "method": request.method},
            label=str(response.status_code),
            latency_ms=(time.perf_counter() - t0) * 1000,
            segments={"route": request.url.path},
        )
        return response


def score(features: Dict[str, Any]) -> float:
    """Stands in for model.predict_proba."""
    return min(1.0, float(features.get("amount", 0)) / 1000)


@vigil.monitor(producer, "fraud", model_version="3", event_id=lambda features, request_id: request_id,
               features=lambda features, request_id: features)
def predict(features: Dict[str, Any], request_id: str) -> float:
    return score(features)


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    yield
    try:
        producer.close(timeout=10)
    except vigil.LossError as e:  # say it; never crash the shutdown
        print(f"vigil: {e}")


app = FastAPI(lifespan=lifespan)
app.add_middleware(VigilMiddleware, producer=producer)


@app.post("/predict")
async def predict_endpoint(body: Dict[str, Any]) -> Dict[str, Any]:
    request_id = body.get("request_id") or uuid.uuid4().hex
    s = predict(body.get("features", {}), request_id)
    return {"request_id": request_id, "score": s}


@app.post("/label")
async def label_endpoint(body: Dict[str, Any]) -> Dict[str, bool]:
    return {"recorded": producer.record_label("fraud", event_id=body["request_id"], label=body["label"])}
