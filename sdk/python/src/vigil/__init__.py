"""Vigil's producer SDK for Python.

    import vigil
    p = vigil.Producer(brokers="127.0.0.1:9092", topic="vigil.predictions")
    p.record("fraud", model_version="3", event_id=req_id,
             features={"amount": 12.5, "country": "DE"}, score=0.93, label="fraud",
             latency_ms=4.2, segments={"region": "eu"})
    p.record_label("fraud", event_id=req_id, label=1)
    p.record_frame("fraud", "3", df, score="proba", id="request_id")
    p.close()   # raises vigil.LossError saying how many events were lost and why

The messages are those of the Go SDK (ingest/): Arrow IPC record batches in
the layout of schemas/arrow.go or JSON events, keyed by model, with the
headers vigil-encoding, vigil-schema-version, vigil-producer and
vigil-sequence. See sdk/python/README.md.
"""

from ._monitor import monitor
from ._producer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BLOCK_TIMEOUT,
    DEFAULT_DELIVERY_TIMEOUT,
    DEFAULT_LINGER,
    DEFAULT_MAX_BUFFERED_EVENTS,
    DEFAULT_MAX_BUFFERED_LABELS,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TOPIC,
    ClosedError,
    FlushTimeout,
    LossError,
    Producer,
    Stats,
)
from ._wire import InvalidEventError

__version__ = "0.1.0"

__all__ = [
    "Producer",
    "Stats",
    "LossError",
    "InvalidEventError",
    "ClosedError",
    "FlushTimeout",
    "monitor",
    "DEFAULT_TOPIC",
    "DEFAULT_MAX_BUFFERED_EVENTS",
    "DEFAULT_MAX_BUFFERED_LABELS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LINGER",
    "DEFAULT_BLOCK_TIMEOUT",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_DELIVERY_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_BYTES",
]
