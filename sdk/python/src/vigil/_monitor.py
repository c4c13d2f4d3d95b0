"""vigil.monitor: time a predict function and record its inputs and output."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from typing import Any, Callable, Dict, Mapping, Optional, TypeVar

from ._wire import InvalidEventError

log = logging.getLogger("vigil")

F = TypeVar("F", bound=Callable[..., Any])


def _prediction(out: Any, output: Any) -> Dict[str, Any]:
    if callable(output):
        return dict(output(out))
    if output is not None:
        return {output: out}
    if isinstance(out, Mapping):
        return {k: out[k] for k in ("score", "label", "probabilities", "value") if k in out}
    if isinstance(out, (str, bool)):
        return {"label": out}
    return {"score": out}


class monitor:
    """Times a predict function and records one event per call: as a
    decorator (sync or async functions) or a context manager.

    Decorator::

        @vigil.monitor(p, "fraud", model_version="3")
        def predict(features: dict) -> float: ...

    The features are the call's first positional argument when it is a
    mapping, else its keyword arguments, or what ``features(*args,
    **kwargs)`` returns. The prediction is what ``output`` says: a field
    name (``"score"``, ``"label"``, ``"value"``, ``"probabilities"``) the
    result is recorded as, or a callable returning record's prediction
    keywords; by default a mapping result gives its score/label/
    probabilities/value keys, a str or bool is a label, anything else a
    score. ``event_id(*args, **kwargs)`` makes the event id (default: one
    made up). The latency is the call's wall time. A call that raises is
    not recorded. An event the contract refuses is logged, never raised
    into the serving path.

    Context manager::

        with vigil.monitor(p, "fraud", features=feats) as m:
            m.score = model.predict_proba(x)[0, 1]   # or m.label, m.value, m.probabilities
        # recorded on exit with the block's latency; m.event_id holds the id
    """

    def __init__(
        self,
        producer: Any,
        model: str,
        *,
        model_version: str = "",
        features: Any = None,
        output: Any = None,
        event_id: Optional[Callable[..., str]] = None,
        segments: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.producer = producer
        self.model = model
        self.model_version = model_version
        self.features = features
        self.output = output
        self.make_id = event_id
        self.segments = segments
        self.score: Any = None
        self.label: Any = None
        self.value: Any = None
        self.probabilities: Any = None
        self.event_id: Optional[str] = None
        self._t0 = 0

    def _record(self, latency_ns: int, event_id: Optional[str], features: Any, pred: Dict[str, Any]) -> Optional[str]:
        try:
            return self.producer.record(
                self.model, event_id=event_id, features=features, model_version=self.model_version,
                latency_ms=latency_ns / 1e6, segments=self.segments, **pred,
            )
        except InvalidEventError as e:
            log.warning("vigil.monitor: event of %s not recorded: %s", self.model, e)
            return None

    def _inputs(self, args: Any, kwargs: Any) -> Any:
        if callable(self.features):
            return self.features(*args, **kwargs)
        if self.features is not None:
            return self.features
        if args and isinstance(args[0], Mapping):
            return args[0]
        return kwargs or None

    def __call__(self, fn: F) -> F:
        make_id = self.make_id

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter_ns()
                out = await fn(*args, **kwargs)
                lat = time.perf_counter_ns() - t0
                eid = make_id(*args, **kwargs) if make_id else None
                self._record(lat, eid, self._inputs(args, kwargs), _prediction(out, self.output))
                return out

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            out = fn(*args, **kwargs)
            lat = time.perf_counter_ns() - t0
            eid = make_id(*args, **kwargs) if make_id else None
            self._record(lat, eid, self._inputs(args, kwargs), _prediction(out, self.output))
            return out

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> "monitor":
        self._t0 = time.perf_counter_ns()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            return
        lat = time.perf_counter_ns() - self._t0
        pred = {k: v for k, v in (("score", self.score), ("label", self.label), ("value", self.value),
                                  ("probabilities", self.probabilities)) if v is not None}
        feats = self.features() if callable(self.features) else self.features
        eid = self.make_id() if self.make_id else None
        self.event_id = self._record(lat, eid, feats, pred)
