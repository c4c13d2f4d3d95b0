"""The Producer: record on the serving path, batch and send in the background.

What blocks: ``record``, ``record_label`` and ``record_frame`` validate,
append to a bounded in-memory buffer and return; they never wait for Kafka
(or the gateway). When the buffer is full the full policy applies: "drop"
(the default) drops at once and counts, "block" waits at most
``block_timeout`` seconds for room, then drops and counts. ``flush`` and
``close`` wait, at most their timeout.

One background thread (the batcher) takes what was recorded, keeps one
buffer per model for events and one for labels, seals a buffer when it holds
``batch_size`` items or its oldest has waited ``linger`` seconds, encodes it
and hands it to the transport: librdkafka (confluent-kafka) sending
asynchronously, or the HTTP gateway client with a sender thread of its own.

Every item given to record* ends in exactly one of invalid, dropped, sent,
failed or unsent, or is still buffered (``stats()``).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import secrets
import threading
import time
import weakref
from collections import deque
from datetime import datetime, timezone
from typing import Any, Callable, Deque, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

import pyarrow as pa

from . import _wire
from ._wire import Event, InvalidEventError, Label

log = logging.getLogger("vigil")

# Defaults, mirroring the Go SDK's (ingest/options.go).
DEFAULT_TOPIC = "vigil.predictions"
DEFAULT_MAX_BUFFERED_EVENTS = 100_000
DEFAULT_MAX_BUFFERED_LABELS = 10_000
DEFAULT_BATCH_SIZE = 1000
DEFAULT_LINGER = 0.1  # seconds
DEFAULT_BLOCK_TIMEOUT = 0.005  # seconds
DEFAULT_MAX_IN_FLIGHT = 16
DEFAULT_DELIVERY_TIMEOUT = 100.0  # seconds: Go's 10 attempts x 10 s write timeout
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
DEFAULT_CLOSE_TIMEOUT = 30.0  # seconds

# A generous bound on what Kafka adds to key and value (record framing, headers).
_MESSAGE_OVERHEAD = 256
_NS_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class LossError(Exception):
    """Raised by ``close`` when the producer lost events (or labels) during
    its life, and by ``flush`` when some recorded before it could not be
    delivered.

    Attributes: ``dropped`` (refused by record*: buffer full or producer
    closed; always 0 from ``flush``), ``failed`` (accepted, then refused by
    Kafka or the gateway, or not encodable), ``unsent`` (accepted and still
    held when ``close``'s timeout expired; some may still have reached
    Kafka), ``reasons`` (count per reason, e.g. ``{"buffer full": 3,
    "Local: Message timed out": 1000}``) and ``lost`` (their sum)."""

    def __init__(self, dropped: int, failed: int, unsent: int, reasons: Mapping[str, int]) -> None:
        self.dropped, self.failed, self.unsent = dropped, failed, unsent
        self.reasons = dict(reasons)
        why = "; ".join(f"{n} {r}" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        super().__init__(
            f"vigil: {self.lost} events not delivered (dropped {dropped}, failed {failed}, unsent {unsent})"
            + (f": {why}" if why else "")
        )

    @property
    def lost(self) -> int:
        return self.dropped + self.failed + self.unsent


class ClosedError(RuntimeError):
    """Raised by ``flush`` after ``close``."""


class FlushTimeout(TimeoutError):
    """Raised by ``flush`` when its timeout expires first; ``buffered`` is
    how many events the producer still held. The events keep flowing."""

    def __init__(self, buffered: int) -> None:
        super().__init__(f"vigil: flush timed out with {buffered} events still buffered")
        self.buffered = buffered


class Stats(NamedTuple):
    """The producer's counters since it was created (or since a fork, in the
    child). Events and labels count together; a frame counts its rows."""

    recorded: int  # accepted by record*
    sent: int  # acknowledged by Kafka (or accepted by the gateway)
    dropped: int  # refused by record*: buffer full or closed
    failed: int  # accepted, then refused by Kafka/the gateway after every retry, or not encodable
    invalid: int  # refused by record*: InvalidEventError
    unsent: int  # accepted, still held when close's timeout expired
    buffered: int  # accepted and held now: recorded - sent - failed - unsent


class _Frame(NamedTuple):
    """A validated frame chunk of one model: a record batch in the layout."""

    model: str
    batch: pa.RecordBatch


class _Sealed(NamedTuple):
    """What the batcher hands the transport: items of one model and kind."""

    kind: str  # "events" or "labels"
    model: str
    items: List[Any]  # Events, Labels, or _Frame chunks (kind "events")
    n: int  # events (rows) in items


_producers: "weakref.WeakSet[Producer]" = weakref.WeakSet()
_orphans: List[Any] = []  # the parent's librdkafka handles in a forked child: never destroyed


def _after_fork_in_child() -> None:
    for p in list(_producers):
        p._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@atexit.register
def _close_at_exit() -> None:
    """A producer never closed would lose what it holds when the
    interpreter exits (its threads are daemons): close it, briefly, and say
    what was lost."""
    for p in list(_producers):
        if p._started and not p._close_done:
            try:
                p.close(timeout=5.0)
            except LossError as e:
                log.error("vigil: at exit, producer %s was not closed: %s", p.id, e)


def _time_ns(t: Any) -> int:
    if t is None:
        return time.time_ns()
    if isinstance(t, datetime):
        v = getattr(t, "value", None)  # pandas.Timestamp: ns since the epoch
        if isinstance(v, int) and hasattr(t, "nanosecond"):
            if t.tzinfo is None:
                return v
            return int(t.tz_convert("UTC").value)
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)  # naive datetimes are UTC
        d = t - _NS_EPOCH
        return (d.days * 86400 + d.seconds) * 1_000_000_000 + d.microseconds * 1000
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise InvalidEventError("event_time", f"want a datetime or Unix seconds, got {type(t).__name__}")
    if not math.isfinite(t):
        raise InvalidEventError("event_time", f"{t} is not finite")
    if isinstance(t, int):
        return t * 1_000_000_000
    return round(t * 1e9)


class Producer:
    """Records prediction events and labels and publishes them to Vigil.

    To Kafka (``brokers`` and ``topic``), or to ``vigil gateway`` over HTTP
    (``gateway_url`` and ``token``); the API is the same. All methods are
    thread-safe. See the package README for every option.

    Keyword options and their defaults (the Go SDK's, ingest/options.go):

    - ``label_topic``: topic of record_label; default ``"<topic>.labels"``.
    - ``encoding``: ``"arrow"`` (default; one compressed Arrow record batch
      of one model per Kafka message) or ``"json"`` (one event per message).
      The gateway transport always sends JSON lines.
    - ``compression``: Arrow body compression ``"zstd"`` (default), ``"lz4"``
      or ``"none"``; with JSON, Kafka's batch compression.
    - ``max_buffered_events``: events held before the full policy applies
      (default 100000); a frame counts its rows. ``max_buffered_labels``:
      the same for labels (default 10000).
    - ``batch_size``: events of one model per message (Arrow) or per send
      (JSON, HTTP) (default 1000). ``linger``: seconds an event may wait
      for its batch to fill (default 0.1).
    - ``full_policy``: ``"drop"`` (default) or ``"block"``;
      ``block_timeout``: seconds record* may wait under "block" (default
      0.005).
    - ``max_in_flight``: sealed batches (Arrow messages; JSON batches of
      batch_size) sent and not yet acknowledged before the batcher waits
      (default 16).
    - ``delivery_timeout``: seconds a message may take to be acknowledged,
      retries included, before its events count as failed (default 100,
      the Go SDK's 10 attempts of 10 s).
    - ``max_message_bytes``: bound on one Kafka message or HTTP body; an
      Arrow batch that encodes larger is split in halves (default 1 MiB).
    - ``acks``: Kafka acknowledgements, ``"all"`` (default), ``1`` or ``0``
      (idempotence needs "all").
    - ``kafka_config``: extra librdkafka settings (they win).
    - ``gzip``: gzip the gateway's request bodies (default True).
    - ``on_drop``: called with the running total of drops on each drop, on
      the caller's thread; must be fast. Default None.
    """

    def __init__(
        self,
        brokers: Union[str, List[str], None] = None,
        topic: str = DEFAULT_TOPIC,
        *,
        label_topic: Optional[str] = None,
        gateway_url: Optional[str] = None,
        token: Optional[str] = None,
        encoding: str = _wire.ENCODING_ARROW,
        compression: str = "zstd",
        max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
        max_buffered_labels: int = DEFAULT_MAX_BUFFERED_LABELS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        linger: float = DEFAULT_LINGER,
        full_policy: str = "drop",
        block_timeout: float = DEFAULT_BLOCK_TIMEOUT,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        delivery_timeout: float = DEFAULT_DELIVERY_TIMEOUT,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        acks: Union[str, int] = "all",
        kafka_config: Optional[Mapping[str, Any]] = None,
        gzip: bool = True,
        on_drop: Optional[Callable[[int], None]] = None,
    ) -> None:
        errs = []
        if gateway_url is None and not brokers:
            errs.append("brokers (or gateway_url) is required")
        if gateway_url is not None and brokers:
            errs.append("give brokers or gateway_url, not both")
        if not topic:
            errs.append("empty topic")
        if label_topic is None:
            label_topic = topic + ".labels"
        if label_topic == topic:
            errs.append(f"label topic {label_topic!r} is the events topic (labels need their own topic)")
        if encoding not in (_wire.ENCODING_ARROW, _wire.ENCODING_JSON):
            errs.append(f"encoding {encoding!r} (want 'arrow' or 'json')")
        if compression not in _wire.COMPRESSIONS:
            errs.append(f"compression {compression!r} (want one of {_wire.COMPRESSIONS})")
        for name, v in (
            ("max_buffered_events", max_buffered_events),
            ("max_buffered_labels", max_buffered_labels),
            ("batch_size", batch_size),
            ("max_in_flight", max_in_flight),
        ):
            if not isinstance(v, int) or v < 1:
                errs.append(f"{name} {v!r} (want an int >= 1)")
        for name, f in (("linger", linger), ("block_timeout", block_timeout), ("delivery_timeout", delivery_timeout)):
            if not isinstance(f, (int, float)) or not f > 0:
                errs.append(f"{name} {f!r} (want seconds > 0)")
        if full_policy not in ("drop", "block"):
            errs.append(f"full_policy {full_policy!r} (want 'drop' or 'block')")
        if not isinstance(max_message_bytes, int) or max_message_bytes < 16 << 10:
            errs.append(f"max_message_bytes {max_message_bytes!r} (want >= {16 << 10})")
        if errs:
            raise ValueError("vigil.Producer: " + "; ".join(errs))
        if isinstance(brokers, (list, tuple)):
            brokers = ",".join(brokers)

        self._brokers = brokers
        self._gateway_url = gateway_url
        self._token = token
        self.topic = topic
        self.label_topic = label_topic
        self.encoding = _wire.ENCODING_JSON if gateway_url is not None else encoding
        self.compression = compression
        self._max_events = max_buffered_events
        self._max_labels = max_buffered_labels
        self._batch_size = batch_size
        self._linger = float(linger)
        self._block = full_policy == "block"
        self._block_timeout = float(block_timeout)
        self._max_in_flight = max_in_flight
        self._delivery_timeout = float(delivery_timeout)
        self._max_message_bytes = max_message_bytes
        self._acks = acks
        self._kafka_config = dict(kafka_config or {})
        self._gzip = gzip
        self._on_drop = on_drop
        self._init_state()
        _producers.add(self)

    # -- state -------------------------------------------------------------

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        # (model, version, feature) -> length of the first vector sent, as
        # the Go SDK checks (ingest/vectors.go); at most 4096 entries.
        self._vector_lengths: Dict[Tuple[str, str, str], int] = {}
        self._room = threading.Condition(self._lock)  # record* waiting for room (block policy)
        self._wake = threading.Condition(self._lock)  # the batcher waiting for work
        self._events: Deque[Any] = deque()  # Event or _Frame
        self._labels: Deque[Label] = deque()
        self._held_events = 0  # rows in self._events
        self._flush_reqs: List["_FlushRequest"] = []
        self._closed = False
        self._aborted = False
        self._recorded = self._sent = self._dropped = self._failed = self._invalid = self._unsent = 0
        self._reasons: Dict[str, int] = {}
        self.id = secrets.token_hex(16)  # vigil-producer: 32 hex digits
        self._id_prefix = self.id[:16] + "-"
        self._ids = itertools.count(1)  # next() is atomic: made-up event ids
        # Per model, the last feature names record checked (fast path):
        # names equal to them need only their values' types checked.
        self._keysets: Dict[str, Any] = {}
        self._id_bytes = self.id.encode()
        self._pid = os.getpid()
        self._thread: Optional[threading.Thread] = None
        self._transport: Any = None
        self._close_result: Optional[BaseException] = None
        self._close_done = False
        self._started = False

    def _forked(self) -> None:
        """In a forked child: the parent's threads and librdkafka handle do
        not exist here. Start afresh (empty buffers, zero counters, a new
        producer id) on the next record*; the parent's buffered events are
        the parent's to send."""
        if self._transport is not None:
            _orphans.append(self._transport)  # destroying it would wait for threads that are gone
        closed = self._closed
        self._init_state()
        self._closed = closed

    def _start(self) -> None:
        # Called with the lock held, on the first record* (so that a producer
        # created before a fork starts its threads in the worker).
        if self._started:
            return
        if self._gateway_url is not None:
            from ._http import HttpTransport

            self._transport = HttpTransport(self, self._gateway_url, self._token, self._gzip)
        else:
            from ._kafka import KafkaTransport

            self._transport = KafkaTransport(self, self._brokers)
        self._thread = threading.Thread(target=self._run, name="vigil-batcher", daemon=True)
        self._started = True
        self._thread.start()

    # -- recording ---------------------------------------------------------

    def record(
        self,
        model: str,
        *,
        event_id: Optional[str] = None,
        features: Optional[Mapping[str, Any]] = None,
        score: Optional[float] = None,
        label: Any = None,
        probabilities: Optional[Mapping[str, float]] = None,
        value: Optional[float] = None,
        latency_ms: Optional[float] = None,
        segments: Optional[Mapping[str, str]] = None,
        model_version: str = "",
        event_time: Any = None,
    ) -> Optional[str]:
        """Records one prediction and returns its event id (``event_id``, or
        one made up when None: the producer id and a counter), or None when
        the event was dropped (buffer full under the full policy, or the
        producer closed; counted in ``stats().dropped``).

        At least one of ``score`` (binary classifier), ``label``,
        ``probabilities`` (class -> p in [0, 1]) or ``value`` (regression)
        is required. ``features`` maps names to numbers, strings, bools or
        None (missing); ``segments`` maps keys to strings. ``event_time``
        is a datetime (naive = UTC) or Unix seconds; default now.
        ``latency_ms`` of 0 or None means not reported.

        Raises InvalidEventError, naming the field, for an event that breaks
        the contract (counted in ``stats().invalid``). Never blocks beyond
        ``block_timeout``. The producer keeps the mappings given: do not
        modify them afterwards.
        """
        # The fast path: plain types, short names; anything else takes the
        # full check (_event), which coerces or raises naming the field.
        ok = (
            type(model) is str and 0 < len(model) <= 64
            and (event_id is None or (type(event_id) is str and 0 < len(event_id) <= 64))
            and type(model_version) is str and len(model_version) <= 64
            and event_time is None and probabilities is None
            and (score is None or (type(score) is float and score - score == 0.0))  # finite
            and (value is None or (type(value) is float and value - value == 0.0))
            and (label is None or (type(label) is str and len(label) <= 64))
            and (latency_ms is None or (type(latency_ms) is float and 0.0 <= latency_ms <= 1e12))
            and (score is not None or value is not None or bool(label))
        )
        if ok and features is not None:
            if type(features) is dict:
                if features.keys() == self._keysets.get(model):  # names checked before: values only
                    for v in features.values():
                        tv = type(v)
                        if not (tv is float or tv is str or tv is bool or tv is int or v is None):
                            ok = False
                            break
                else:
                    for k, v in features.items():
                        tv = type(v)
                        if not (type(k) is str and 0 < len(k) <= 64 and (tv is float or tv is str or tv is bool or tv is int or v is None)):
                            ok = False
                            break
                    if ok and len(self._keysets) < 1024:
                        self._keysets[model] = set(features)
            else:
                ok = False
        if ok and segments is not None:
            if type(segments) is dict:
                for k, v in segments.items():
                    if not (type(k) is str and 0 < len(k) <= 64 and type(v) is str):
                        ok = False
                        break
            else:
                ok = False
        if ok:
            if event_id is None:
                event_id = f"{self._id_prefix}{next(self._ids)}"
            ev: Any = (event_id, model, model_version, time.time_ns(), features or None, score, label or None, None,
                       value, round(latency_ms * 1e6) if latency_ms else 0, segments or None)
        else:
            ev = self._event(model, event_id, features, score, label, probabilities, value, latency_ms, segments,
                             model_version, event_time)
            event_id = ev.event_id
        with self._lock:
            if not self._started:
                self._start_or_refuse()
            if self._closed or self._held_events >= self._max_events:
                if not self._full(1, False):
                    return None
            self._events.append(ev)
            self._held_events += 1
            self._recorded += 1
        return event_id

    def _event(self, model: Any, event_id: Any, features: Any, score: Any, label: Any, probabilities: Any, value: Any,
               latency_ms: Any, segments: Any, model_version: Any, event_time: Any) -> Event:
        """record's full check: coerces what it can (numpy scalars, ints),
        raises InvalidEventError naming the field, counted invalid."""
        try:
            if type(model) is not str or not model or len(model) > 64:
                model = _wire.check_name("model", model)
            if event_id is None:
                event_id = f"{self._id_prefix}{next(self._ids)}"
            elif type(event_id) is not str or not event_id or len(event_id) > 64:
                event_id = _wire.check_name("event_id", str(event_id) if isinstance(event_id, int) else event_id)
            if type(model_version) is not str or len(model_version) > 64:
                if model_version is None:
                    model_version = ""
                else:
                    model_version = str(model_version)
                    if not _wire._opt_name_ok(model_version):
                        raise InvalidEventError("model_version", f"longer than {_wire.MAX_NAME_LEN} bytes")
            t = time.time_ns() if event_time is None else _time_ns(event_time)
            if features is not None:
                features = _wire.check_features(features)
                if features:
                    self._check_vector_lengths(model, model_version, features)
            if score is not None:
                if type(score) is not float or not math.isfinite(score):
                    score = _wire.check_float("score", score)
            if label is not None:
                if type(label) is not str:
                    label = _label_str(label)
                if not label:
                    label = None
                elif len(label) > 64 and not _wire._opt_name_ok(label):
                    raise InvalidEventError("label", f"longer than {_wire.MAX_NAME_LEN} bytes")
            if probabilities is not None:
                probabilities = _wire.check_probabilities(probabilities)
            if value is not None:
                if type(value) is not float or not math.isfinite(value):
                    value = _wire.check_float("value", value)
            if score is None and label is None and probabilities is None and value is None:
                raise InvalidEventError("prediction", "missing: give score, label, probabilities or value")
            lat = 0
            if latency_ms:
                lat = _latency_ns(latency_ms)
            if segments is not None:
                segments = _wire.check_segments(segments)
        except InvalidEventError:
            with self._lock:
                self._invalid += 1
            raise
        return Event(event_id, model, model_version, t, features or None, score, label, probabilities, value, lat, segments)

    def _check_vector_lengths(self, model: str, version: str, features: Dict[str, Any]) -> None:
        """Refuses a vector of another length than the first one this
        producer sent for the model, version and feature."""
        for k, v in features.items():
            if type(v) is not tuple:
                continue
            key = (model, version, k)
            with self._lock:
                want = self._vector_lengths.get(key)
                if want is None and len(self._vector_lengths) < 4096:
                    self._vector_lengths[key] = len(v)
            if want is not None and want != len(v):
                raise InvalidEventError(
                    f"features.{k}",
                    f"vector of {len(v)} values, this producer sent vectors of {want} for model {model!r} version {version!r}",
                )

    def record_label(
        self,
        model: str,
        *,
        event_id: str,
        label: Union[str, bool, int, float],
        label_time: Any = None,
    ) -> bool:
        """Records the ground truth of an earlier prediction (joined to it
        by ``event_id`` and ``model``) for the label topic. ``label`` is a
        class (str; a bool becomes "true"/"false") or a value (int/float:
        regression, or a 0/1 outcome). ``label_time`` is a datetime or Unix
        seconds, default now. Returns False when dropped; raises
        InvalidEventError naming the field."""
        try:
            model = _wire.check_name("model", model)
            event_id = _wire.check_name("event_id", event_id)
            cls: Optional[str] = None
            val: Optional[float] = None
            if isinstance(label, bool):
                cls = "true" if label else "false"
            elif isinstance(label, str):
                cls = _wire.check_name("label", label)
            elif label is None:
                raise InvalidEventError("label", "missing")
            elif hasattr(label, "dtype") and label.dtype.kind == "b":
                cls = "true" if bool(label) else "false"
            else:
                val = _wire.check_float("label", label)
            t = _time_ns(label_time)
        except InvalidEventError:
            with self._lock:
                self._invalid += 1
            raise
        lb = Label(event_id, model, cls, val, t)
        with self._lock:
            if not self._started:
                self._start_or_refuse()
            if self._closed or len(self._labels) >= self._max_labels:
                if not self._full(1, True):
                    return False
            self._labels.append(lb)
            self._recorded += 1
        return True

    def record_frame(
        self,
        model: str,
        model_version: str,
        df: Any,
        *,
        score: Optional[str] = None,
        label: Optional[str] = None,
        value: Optional[str] = None,
        probabilities: Optional[Union[Mapping[str, str], List[str]]] = None,
        id: Optional[str] = None,
        event_time: Any = None,
        latency_ms: Optional[str] = None,
        segments: Optional[List[str]] = None,
        features: Optional[List[str]] = None,
    ) -> int:
        """Records every row of a pandas DataFrame or pyarrow Table (or
        RecordBatch) as one prediction event of ``model``, vectorised: the
        frame becomes Arrow columns in one conversion, validated with
        pyarrow compute kernels; no Python loop over rows.

        Column arguments name columns of ``df``: ``score``, ``label``,
        ``value`` (the prediction, at least one of them or
        ``probabilities``: a mapping class -> column, or a list of columns
        named by class), ``id`` (event ids; default made up from the
        producer id and the row), ``latency_ms``, ``segments`` (string
        columns) and ``features`` (default: every column not named
        otherwise). Numeric columns become number features, bool columns
        bool features, string/categorical columns string features; nulls
        are missing (a pandas NaN is a null; a NaN in a pyarrow float column
        stays a NaN value, as a NaN feature of the Go SDK does).
        ``event_time`` is a column name, a datetime or Unix seconds for
        every row, default now.

        Returns the number of rows recorded (0 when the frame was dropped
        under the full policy: its rows count in ``stats().dropped``).
        Raises InvalidEventError naming the column and the first bad row;
        the whole frame is then refused (its rows count as invalid).
        """
        from ._frame import frame_batch

        n_rows = _num_rows(df)
        try:
            model = _wire.check_name("model", model)
            if model_version is None:
                model_version = ""
            model_version = str(model_version)
            if not _wire._opt_name_ok(model_version):
                raise InvalidEventError("model_version", f"longer than {_wire.MAX_NAME_LEN} bytes")
            id_prefix = f"{self._id_prefix}f{next(self._ids)}-"
            batch = frame_batch(
                model, model_version, df, score=score, label=label, value=value, probabilities=probabilities,
                id=id, id_prefix=id_prefix, event_time=event_time, latency_ms=latency_ms, segments=segments,
                features=features,
            )
            dims = {f.name[len(_wire.PREFIX_FEATURE):]: (0.0,) * f.type.list_size
                    for f in batch.schema if f.name.startswith(_wire.PREFIX_FEATURE) and isinstance(f.type, pa.FixedSizeListType)}
            if dims:
                self._check_vector_lengths(model, model_version, dims)
        except InvalidEventError:
            with self._lock:
                self._invalid += n_rows
            raise
        n = batch.num_rows
        if n == 0:
            return 0
        with self._lock:
            if not self._started:
                self._start_or_refuse()
            # A frame larger than the whole buffer is taken when the buffer is empty.
            if self._closed or (self._held_events > 0 and self._held_events + n > self._max_events):
                if not self._full(n, False):
                    return 0
            self._events.append(_Frame(model, batch))
            self._held_events += n
            self._recorded += n
        return n

    def record_proba(
        self,
        model: str,
        model_version: str,
        proba: Any,
        *,
        classes: Optional[List[Any]] = None,
        X: Any = None,
        ids: Any = None,
        feature_names: Optional[List[str]] = None,
        event_time: Any = None,
        latency_ms: Optional[float] = None,
        segments: Optional[Mapping[str, str]] = None,
    ) -> int:
        """Records a batch of a classifier's ``predict_proba`` output (an
        array of shape [n, k]) in one call: one event per row with the
        probability of every class (``classes``, e.g. ``model.classes_``;
        default 0..k-1), the predicted label (the class of highest
        probability), for two classes the score (probability of the second
        class, the positive one in scikit-learn), and the inputs ``X`` (a
        DataFrame, or an array named by ``feature_names``) as features.
        ``latency_ms`` and ``segments`` apply to every row. Vectorised like
        ``record_frame``, which it calls; returns the rows recorded."""
        from ._frame import proba_table

        table, kw = proba_table(proba, classes=classes, X=X, ids=ids, feature_names=feature_names,
                                latency_ms=latency_ms, segments=segments)
        return self.record_frame(model, model_version, table, event_time=event_time, **kw)

    def _start_or_refuse(self) -> None:
        if not self._closed:
            self._start()

    def _full(self, n: int, labels: bool) -> bool:
        """The buffer is full, or the producer closed (lock held). Under the
        block policy, waits for room at most block_timeout; reports whether
        the item may be appended now. A refused item is counted dropped."""
        if self._block and not self._closed:
            deadline = time.monotonic() + self._block_timeout
            while True:
                if self._closed:
                    break
                if labels:
                    if len(self._labels) < self._max_labels:
                        return True
                elif self._held_events == 0 or self._held_events + n <= self._max_events:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._room.wait(left)
        reason = "producer closed" if self._closed else "buffer full"
        self._dropped += n
        self._reasons[reason] = self._reasons.get(reason, 0) + n
        total = self._dropped
        if total & (total - 1) == 0 or n > 1:  # 1, 2, 4, 8...: a trace of overload, not a line per drop
            log.warning("vigil: %s, dropping events (dropped total %d)", reason, total)
        if self._on_drop is not None:
            self._on_drop(total)
        return False

    # -- results (called by the transports) -----------------------------------

    def _resolve(self, n: int, error: Optional[str], unsent: bool = False) -> None:
        with self._lock:
            if error is None:
                self._sent += n
            elif unsent:
                self._unsent += n
            else:
                self._failed += n
                self._reasons[error] = self._reasons.get(error, 0) + n

    # -- the batcher ---------------------------------------------------------

    def _run(self) -> None:
        try:
            _Batcher(self).run()
        except BaseException:  # a bug: do not leave flush and close waiting forever
            log.exception("vigil: batcher thread died")
            with self._lock:
                self._aborted = True
                held = self._held_events + len(self._labels)
                self._events.clear()
                self._labels.clear()
                self._held_events = 0
                self._unsent += held
                for req in self._flush_reqs:
                    req.done.set()
                self._flush_reqs.clear()
            raise

    # -- flush, close, stats ---------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> None:
        """Waits until every event and label recorded before the call has
        been acknowledged or counted as failed. Raises LossError counting
        those that failed (events recorded concurrently may be counted too),
        FlushTimeout when ``timeout`` seconds (default: no limit) pass first
        (the events keep flowing), ClosedError after close. Seals every
        model's batch at once: calling it often defeats batching."""
        req = _FlushRequest()
        with self._lock:
            if self._closed:
                raise ClosedError("vigil: producer closed")
            if not self._started:
                return
            failed0, unsent0 = self._failed, self._unsent
            reasons0 = dict(self._reasons)
            self._flush_reqs.append(req)
            self._wake.notify()
        if not req.done.wait(timeout):
            raise FlushTimeout(self.stats().buffered)
        with self._lock:
            failed, unsent = self._failed - failed0, self._unsent - unsent0
            reasons = {r: c - reasons0.get(r, 0) for r, c in self._reasons.items() if c - reasons0.get(r, 0) > 0}
        if failed or unsent:
            raise LossError(0, failed, unsent, reasons)

    def close(self, timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        """Stops the producer: record* drop from now on (counted), every
        event already recorded is sent (as flush would), then the threads
        stop. When ``timeout`` seconds pass first, what is still held is
        counted as unsent. Raises LossError with the lifetime counts of
        dropped, failed and unsent events (the numbers ``stats()`` gives)
        and their reasons, unless every event was delivered or refused as
        invalid. Idempotent: later calls raise (or not) as the first did."""
        with self._lock:
            if self._close_done:
                if self._close_result is not None:
                    raise self._close_result
                return
            self._closed = True
            self._room.notify_all()
            self._wake.notify()
            thread = self._thread
        deadline = time.monotonic() + timeout
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                with self._lock:
                    self._aborted = True  # the batcher counts what it holds as unsent and returns
                    self._wake.notify()
                thread.join(5.0)
        if self._transport is not None:
            self._transport.close(max(0.0, deadline - time.monotonic()))
        s = self.stats()
        err: Optional[BaseException] = None
        if s.buffered != 0:
            log.error("vigil: BUG: producer closed with %d events unaccounted for", s.buffered)
        if s.dropped or s.failed or s.unsent:
            with self._lock:
                reasons = dict(self._reasons)
            err = LossError(s.dropped, s.failed, s.unsent, reasons)
        log.info("vigil: producer closed: sent %d, dropped %d, failed %d, unsent %d, invalid %d",
                 s.sent, s.dropped, s.failed, s.unsent, s.invalid)
        with self._lock:
            self._close_done = True
            self._close_result = err
        if err is not None:
            raise err

    def stats(self) -> Stats:
        """The counters, read together (a consistent snapshot)."""
        with self._lock:
            return Stats(
                recorded=self._recorded, sent=self._sent, dropped=self._dropped, failed=self._failed,
                invalid=self._invalid, unsent=self._unsent,
                buffered=self._recorded - self._sent - self._failed - self._unsent,
            )

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _FlushRequest:
    __slots__ = ("done", "marker")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.marker = 0  # the last sequence sealed for it


def _label_str(label: Any) -> str:
    if isinstance(label, bool) or (hasattr(label, "dtype") and label.dtype.kind == "b"):
        return "true" if label else "false"
    if hasattr(label, "item"):  # numpy scalar
        label = label.item()
    return str(label)


def _latency_ns(ms: Any) -> int:
    if type(ms) is not float:
        ms = _wire.check_float("latency_ms", ms, finite=False)
    if not (0 <= ms <= _wire.MAX_LATENCY_MS):
        raise InvalidEventError("latency_ms", f"{ms} not in [0, {_wire.MAX_LATENCY_MS}]")
    return round(ms * 1e6)


def _num_rows(df: Any) -> int:
    n = getattr(df, "num_rows", None)
    if n is None:
        try:
            n = len(df)
        except TypeError:
            n = 0
    return int(n)


class _Batcher:
    """The batcher thread's state: per-model buffers, the linger queue,
    sealing. Everything here runs on the batcher thread only."""

    def __init__(self, p: Producer) -> None:
        self.p = p
        self.t = p._transport
        self.events: Dict[str, List[Any]] = {}  # model -> Events and _Frames
        self.event_rows: Dict[str, int] = {}
        self.labels: Dict[str, List[Label]] = {}
        self.opened: Dict[Tuple[str, str], float] = {}  # (kind, model) -> when its first item came
        self.held = 0

    def run(self) -> None:
        p = self.p
        tick = min(p._linger / 4, 0.01)
        while True:
            with p._lock:
                if not p._events and not p._labels and not p._flush_reqs and not p._closed and not p._aborted:
                    p._wake.wait(tick if (self.opened or self.t.pending()) else p._linger)
                evs, p._events = p._events, deque()
                p._held_events = 0
                labs, p._labels = p._labels, deque()
                reqs, p._flush_reqs = p._flush_reqs, []
                closing, aborted = p._closed, p._aborted
                if evs or labs:
                    p._room.notify_all()
            if aborted:
                self.abandon(evs, labs, reqs)
                return
            for item in evs:
                self.add_event(item)
            for lb in labs:
                self.add_label(lb)
            # Wait for room once events are taken: the buffer may refill meanwhile.
            if closing or reqs:
                self.seal_all()
                marker = self.t.last_sequence()
                for r in reqs:
                    r.marker = marker
                    self.t.add_flush(r)
            else:
                self.seal_expired(time.monotonic())
            self.t.poll()
            if closing:
                with p._lock:
                    more = bool(p._events or p._labels)
                if more:
                    continue
                if self.t.drain(lambda: p._aborted):
                    return
                self.abandon(deque(), deque(), [])
                return

    def abandon(self, evs: Deque[Any], labs: Deque[Label], reqs: List[_FlushRequest]) -> None:
        """Close's timeout expired: count what is held as unsent."""
        n = self.held + sum(_rows(x) for x in evs) + len(labs)
        with self.p._lock:
            n += self.p._held_events + len(self.p._labels)
            self.p._events.clear()
            self.p._labels.clear()
            self.p._held_events = 0
            self.p._unsent += n
        self.events.clear()
        self.labels.clear()
        self.opened.clear()
        self.held = 0
        for r in reqs:
            r.done.set()
        self.t.abandon()

    def add_event(self, item: Any) -> None:
        if type(item) is tuple:  # record's fast path queues plain tuples
            item = tuple.__new__(Event, item)
        model = item.model
        buf = self.events.get(model)
        if buf is None:
            buf = self.events[model] = []
            self.event_rows[model] = 0
        if not buf:
            self.opened.setdefault(("events", model), time.monotonic())
        buf.append(item)
        n = _rows(item)
        self.event_rows[model] += n
        self.held += n
        if self.event_rows[model] >= self.p._batch_size:
            self.seal("events", model)

    def add_label(self, lb: Label) -> None:
        buf = self.labels.get(lb.model)
        if buf is None:
            buf = self.labels[lb.model] = []
        if not buf:
            self.opened.setdefault(("labels", lb.model), time.monotonic())
        buf.append(lb)
        self.held += 1
        if len(buf) >= self.p._batch_size:
            self.seal("labels", lb.model)

    def seal_expired(self, now: float) -> None:
        linger = self.p._linger
        for key in [k for k, t in self.opened.items() if now - t >= linger]:
            self.seal(*key)

    def seal_all(self) -> None:
        for key in list(self.opened):
            self.seal(*key)

    def seal(self, kind: str, model: str) -> None:
        self.opened.pop((kind, model), None)
        if kind == "events":
            items = self.events.pop(model, [])
            n = self.event_rows.pop(model, 0)
        else:
            items = self.labels.pop(model, [])
            n = len(items)
        if not items:
            return
        self.held -= n
        # Wait while max_in_flight batches are out: the buffer fills and
        # record* apply the full policy, so memory stays bounded.
        while self.t.in_flight() >= self.p._max_in_flight:
            self.t.poll(0.05)
            if self.p._aborted:
                self.p._resolve(n, "unsent", unsent=True)
                return
        self.t.send(_Sealed(kind, model, items, n))


def _rows(item: Any) -> int:
    return item.batch.num_rows if isinstance(item, _Frame) else 1
