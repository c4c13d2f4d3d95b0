"""Vigil's wire formats, as schemas/ and schemas/wire/ in the Go module define them.

- JSON: one event (schemas/prediction_event.v1.schema.json) or label
  (schemas/label_event.v1.schema.json) per Kafka message, byte for byte what
  Go's wire.AppendJSON / wire.AppendLabelJSON write for the same event.
- Arrow IPC: one stream per Kafka message holding the schema and exactly one
  record batch of one model's events (layout of schemas/arrow.go) or labels
  (schemas/label.go), with ZSTD (default), LZ4_FRAME or no body compression.

Events travel inside the SDK as plain tuples (``Event``), validated once by
``validate_event``; this module turns lists of them into messages.
"""

from __future__ import annotations

import io
import json
import math
from decimal import Decimal
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import pyarrow as pa

SCHEMA_VERSION = 1
LABEL_SCHEMA_VERSION = 1
MAX_NAME_LEN = 256  # bytes of UTF-8
MAX_VECTOR_DIM = 4096  # items of a vector (embedding) feature, schemas.MaxVectorDim
VECTOR_HEADER_PREFIX = "__embedding."  # schemas.VectorHeaderPrefix

# Kafka headers (schemas/wire/doc.go).
HEADER_ENCODING = "vigil-encoding"
HEADER_SCHEMA_VERSION = "vigil-schema-version"
HEADER_PRODUCER = "vigil-producer"
HEADER_SEQUENCE = "vigil-sequence"
ENCODING_ARROW = "arrow"
ENCODING_JSON = "json"

# Columns (schemas/arrow.go, schemas/label.go).
COL_EVENT_ID = "event_id"
COL_MODEL = "model"
COL_MODEL_VERSION = "model_version"
COL_EVENT_TIME = "event_time"
COL_LATENCY_MS = "latency_ms"
COL_PRED_SCORE = "pred_score"
COL_PRED_LABEL = "pred_label"
COL_PRED_VALUE = "pred_value"
COL_LABEL_TIME = "label_time"
COL_LABEL_CLASS = "label_class"
COL_LABEL_VALUE = "label_value"
PREFIX_PROBA = "proba."
PREFIX_FEATURE = "f."
PREFIX_SEGMENT = "s."
META_SCHEMA_VERSION = "vigil.schema_version"
META_TYPE_MISMATCH_PREFIX = "vigil.type_mismatch."

TIME_TYPE = pa.timestamp("ms", tz="UTC")
FIXED_FIELDS = [
    pa.field(COL_EVENT_ID, pa.string(), nullable=False),
    pa.field(COL_MODEL, pa.string(), nullable=False),
    pa.field(COL_MODEL_VERSION, pa.string(), nullable=False),
    pa.field(COL_EVENT_TIME, TIME_TYPE, nullable=False),
    pa.field(COL_LATENCY_MS, pa.float64()),
    pa.field(COL_PRED_SCORE, pa.float64()),
    pa.field(COL_PRED_LABEL, pa.string()),
    pa.field(COL_PRED_VALUE, pa.float64()),
]
LABEL_FIELDS = [
    pa.field(COL_EVENT_ID, pa.string(), nullable=False),
    pa.field(COL_MODEL, pa.string(), nullable=False),
    pa.field(COL_LABEL_TIME, TIME_TYPE, nullable=False),
    pa.field(COL_LABEL_CLASS, pa.string()),
    pa.field(COL_LABEL_VALUE, pa.float64()),
]
LABEL_SCHEMA = pa.schema(LABEL_FIELDS, metadata={META_SCHEMA_VERSION: str(LABEL_SCHEMA_VERSION)})

# Largest latency_ms the Go decoders accept (it must fit a time.Duration).
MAX_LATENCY_MS = (2**63 - 1) // 1_000_000
_NS_PER_MS = 1_000_000

COMPRESSIONS = ("zstd", "lz4", "none")


class InvalidEventError(ValueError):
    """An event or label that breaks the v1 contract. ``field`` names the
    offending field (``"event_id"``, ``"features.amount"``, ``"score"``...)
    and ``reason`` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid event: {field}: {reason}")
        self.field = field
        self.reason = reason


class Event(NamedTuple):
    """One validated prediction event, as the producer holds it."""

    event_id: str
    model: str
    model_version: str
    time_ns: int  # Unix nanoseconds, UTC
    features: Optional[Dict[str, Any]]  # name -> float | int | str | bool | None
    score: Optional[float]
    label: Optional[str]  # "" is stored as None
    probabilities: Optional[Dict[str, float]]
    value: Optional[float]
    latency_ns: int  # 0 = not reported
    segments: Optional[Dict[str, str]]


class Label(NamedTuple):
    """One validated label (ground truth) event."""

    event_id: str
    model: str
    label_class: Optional[str]  # exactly one of class and value is set
    label_value: Optional[float]
    time_ns: int


def _name_ok(s: Any) -> bool:
    # A str of at most 64 characters is at most 256 bytes of UTF-8.
    return type(s) is str and s != "" and (len(s) <= 64 or len(s.encode("utf-8", "surrogatepass")) <= MAX_NAME_LEN)


def _opt_name_ok(s: str) -> bool:
    return len(s) <= 64 or len(s.encode("utf-8", "surrogatepass")) <= MAX_NAME_LEN


def check_name(field: str, s: Any) -> str:
    if type(s) is not str:
        if isinstance(s, str):
            s = str(s)
        else:
            raise InvalidEventError(field, f"want a string, got {type(s).__name__}")
    if s == "":
        raise InvalidEventError(field, "empty")
    if not _opt_name_ok(s):
        raise InvalidEventError(field, f"longer than {MAX_NAME_LEN} bytes")
    return s


def check_features(features: Any) -> Optional[Dict[str, Any]]:
    """Checks a features mapping: names non-empty and at most 256 bytes;
    values numbers, strings, bools, None, or vectors (embeddings: a list,
    tuple or 1-D numpy array of 1 to 4096 finite numbers, kept as a tuple
    of floats)."""
    if features is None:
        return None
    if not isinstance(features, dict):
        try:
            features = dict(features)
        except (TypeError, ValueError):
            raise InvalidEventError("features", f"want a mapping of name to value, got {type(features).__name__}") from None
    for k, v in features.items():
        t = type(v)
        if not (t is float or t is str or t is int or t is bool or v is None):
            features = _coerce_features(features)
            break
        if not _name_ok(k):
            check_name("features name", k)
    return features


def _coerce_features(features: Dict[str, Any]) -> Dict[str, Any]:
    """Slow path of check_features: numpy scalars and other number types."""
    out: Dict[str, Any] = {}
    for k, v in features.items():
        if not _name_ok(k):
            check_name(f"features[{k!r}]" if isinstance(k, str) else "features name", k)
        t = type(v)
        if t is float or t is str or t is int or t is bool or v is None:
            out[k] = v
        elif hasattr(v, "dtype") and getattr(v, "ndim", 1) == 0:  # numpy scalar
            kind = v.dtype.kind
            if kind == "b":
                out[k] = bool(v)
            elif kind in "iuf":
                out[k] = float(v)
            elif kind in "US":
                out[k] = str(v)
            else:
                raise InvalidEventError(f"features.{k}", f"unsupported value type {v.dtype}")
        elif isinstance(v, (list, tuple)) or (hasattr(v, "dtype") and getattr(v, "ndim", 0) == 1):
            out[k] = _vector(k, v)
        elif isinstance(v, bool):
            out[k] = bool(v)
        elif isinstance(v, (int, float)):
            out[k] = float(v)
        elif isinstance(v, str):
            out[k] = str(v)
        else:
            raise InvalidEventError(
                f"features.{k}", f"want a number, string, bool, None or a vector of numbers, got {type(v).__name__}"
            )
    return out


def _vector(name: str, v: Any) -> Tuple[float, ...]:
    """A vector feature as a tuple of floats, checked as Event.Validate does."""
    if len(v) == 0:
        raise InvalidEventError(f"features.{name}", "empty vector")
    if len(v) > MAX_VECTOR_DIM:
        raise InvalidEventError(f"features.{name}", f"vector of {len(v)} values, more than {MAX_VECTOR_DIM}")
    if name.endswith("]"):
        raise InvalidEventError(f"features.{name}", "a vector's name must not end in ']'")
    try:
        out = tuple(float(x) for x in v if type(x) is not bool and not isinstance(x, str))
    except (TypeError, ValueError):
        out = ()
    if len(out) != len(v):
        raise InvalidEventError(f"features.{name}", "a vector holds numbers only")
    for i, x in enumerate(out):
        if not math.isfinite(x):
            raise InvalidEventError(f"features.{name}", f"vector element {i} is not finite")
    return out


def check_float(field: str, v: Any, finite: bool = True) -> float:
    t = type(v)
    if t is not float:
        if t is bool or not isinstance(v, (int, float)) and not hasattr(v, "__float__"):
            raise InvalidEventError(field, f"want a number, got {type(v).__name__}")
        v = float(v)
    if finite and not math.isfinite(v):
        raise InvalidEventError(field, f"{v} is not finite")
    return v


def check_probabilities(probs: Any) -> Optional[Dict[str, float]]:
    if probs is None:
        return None
    if not isinstance(probs, dict):
        try:
            probs = dict(probs)
        except (TypeError, ValueError):
            raise InvalidEventError("probabilities", "want a mapping of class to probability") from None
    out: Dict[str, float] = {}
    for k, p in probs.items():
        if not _name_ok(k):
            if not isinstance(k, str):
                k = str(k)
            check_name("probabilities class", k)
        p = check_float(f"probabilities.{k}", p, finite=False)
        if not (0.0 <= p <= 1.0):
            raise InvalidEventError(f"probabilities.{k}", f"{p} not in [0, 1]")
        out[k] = p
    return out or None


def check_segments(segments: Any) -> Optional[Dict[str, str]]:
    if segments is None:
        return None
    if not isinstance(segments, dict):
        try:
            segments = dict(segments)
        except (TypeError, ValueError):
            raise InvalidEventError("segments", "want a mapping of key to string") from None
    for k, v in segments.items():
        if not _name_ok(k):
            check_name("segments key", k)
        if type(v) is not str:
            if isinstance(v, str):
                segments = {kk: str(vv) for kk, vv in segments.items()}
            else:
                raise InvalidEventError(f"segments.{k}", f"want a string, got {type(v).__name__}")
    return segments or None


# --- JSON ------------------------------------------------------------------

_dumps_str = json.JSONEncoder(ensure_ascii=False).encode


def _json_str(s: str) -> str:
    # ensure_ascii=False escapes exactly what Go's appendString escapes for
    # valid UTF-8: '"', '\\', \n \r \t \b \f, other controls as \u00XX.
    return _dumps_str(s)


def format_float(f: float) -> str:
    """The number as Go's wire.appendFloat writes it (encoding/json's
    format): shortest round-trip digits, exponent form only below 1e-6 or
    from 1e21; NaN and infinities as null."""
    if f != f or f in (math.inf, -math.inf):
        return "null"
    a = abs(f)
    r = repr(float(f))
    if a != 0 and (a < 1e-6 or a >= 1e21):
        # repr's exponent form is Go's 'e' format (e-07, e+21); Go then
        # trims one leading zero of a negative exponent.
        if "e" not in r:
            r = "%.17e" % f  # unreachable for doubles; keep exact
        m, e = r.split("e")
        if m.endswith(".0"):
            m = m[:-2]
        sign, digits = e[0], e[1:]
        if sign == "-" and len(digits) == 2 and digits[0] == "0":
            digits = digits[1:]
        return f"{m}e{sign}{digits}"
    if "e" in r:  # repr switches to exponent form from 1e16 and below 1e-4
        return format(Decimal(r), "f")
    if r.endswith(".0"):
        r = r[:-2]
    return r


def format_time_ns(ns: int) -> str:
    """A quoted RFC 3339 UTC time with as many fractional digits as needed
    (Go's appendTime), or Unix milliseconds outside years 0..9999."""
    sec, frac = divmod(ns, 1_000_000_000)
    days, rem = divmod(sec, 86400)
    y, m, d = _civil_from_days(days)
    if y < 0 or y > 9999:
        return str(ns // _NS_PER_MS)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    s = f'"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}'
    if frac:
        s += ("." + f"{frac:09d}").rstrip("0")
    return s + 'Z"'


def _civil_from_days(z: int) -> Tuple[int, int, int]:
    # Howard Hinnant's days_from_civil inverse (proleptic Gregorian).
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d)


def format_millis(ns: int) -> str:
    """A non-negative duration in ns as exact decimal milliseconds (Go's appendMillis)."""
    ms, frac = divmod(ns, _NS_PER_MS)
    if not frac:
        return str(ms)
    return f"{ms}." + f"{frac:06d}".rstrip("0")


def _json_value(v: Any) -> str:
    t = type(v)
    if t is str:
        return _json_str(v)
    if t is bool:
        return "true" if v else "false"
    if v is None:
        return "null"
    if t is tuple:
        return "[" + ",".join(format_float(x) for x in v) + "]"
    return format_float(float(v))


def event_json(e: Event) -> bytes:
    """The JSON message of e, as wire.AppendJSON writes it."""
    parts = ['{"event_id":', _json_str(e.event_id), ',"model":', _json_str(e.model)]
    if e.model_version:
        parts += [',"model_version":', _json_str(e.model_version)]
    parts += [',"event_time":', format_time_ns(e.time_ns), ',"features":{']
    if e.features:
        parts.append(",".join(_json_str(k) + ":" + _json_value(v) for k, v in e.features.items()))
    parts.append('},"prediction":{')
    pred = []
    if e.score is not None:
        pred.append('"score":' + format_float(e.score))
    if e.label:
        pred.append('"label":' + _json_str(e.label))
    if e.probabilities:
        pred.append(
            '"probabilities":{' + ",".join(_json_str(k) + ":" + format_float(p) for k, p in e.probabilities.items()) + "}"
        )
    if e.value is not None:
        pred.append('"value":' + format_float(e.value))
    parts.append(",".join(pred))
    parts.append("}")
    if e.latency_ns:
        parts += [',"latency_ms":', format_millis(e.latency_ns)]
    if e.segments:
        parts.append(',"segments":{' + ",".join(_json_str(k) + ":" + _json_str(v) for k, v in e.segments.items()) + "}")
    parts.append("}")
    return "".join(parts).encode("utf-8", "replace")


def label_json(lb: Label) -> bytes:
    """The JSON message of a label, as wire.AppendLabelJSON writes it."""
    if lb.label_class is not None:
        v = _json_str(lb.label_class)
    else:
        v = format_float(lb.label_value)  # type: ignore[arg-type]
    s = (
        '{"event_id":' + _json_str(lb.event_id) + ',"model":' + _json_str(lb.model) + ',"label":' + v
        + ',"label_time":' + format_time_ns(lb.time_ns) + "}"
    )
    return s.encode("utf-8", "replace")


# --- Arrow -----------------------------------------------------------------

_KIND_NUMBER, _KIND_STRING, _KIND_BOOL = 1, 2, 3
_KIND_VECTOR = 100  # + the vector's length: vectors of another length are mismatches
_ARROW_OF_KIND = {_KIND_NUMBER: pa.float64(), _KIND_STRING: pa.string(), _KIND_BOOL: pa.bool_()}


def _kind(v: Any) -> int:
    t = type(v)
    if t is str:
        return _KIND_STRING
    if t is bool:
        return _KIND_BOOL
    if t is tuple:
        return _KIND_VECTOR + len(v)
    return _KIND_NUMBER


def _dynamic_columns(
    maps: Sequence[Optional[Dict[str, Any]]], n: int, fixed: Optional[pa.DataType]
) -> Tuple[Dict[str, pa.Array], Dict[str, int]]:
    """Columns of a group (features, probabilities or segments) from the
    per-event maps, as BatchBuilder builds them: the first non-null value of
    a name fixes its column's kind; later values of another kind are null
    and counted as type mismatches; a name only ever null is float64.
    Probabilities and segments have one fixed type."""
    values: Dict[str, List[Any]] = {}
    kinds: Dict[str, int] = {}
    mismatches: Dict[str, int] = {}
    for row, m in enumerate(maps):
        if not m:
            continue
        for k, v in m.items():
            col = values.get(k)
            if col is None:
                col = values[k] = [None] * n
            if v is None:
                continue
            if fixed is None:
                kv = _kind(v)
                kc = kinds.get(k)
                if kc is None:
                    kinds[k] = kv
                elif kc != kv:
                    mismatches[k] = mismatches.get(k, 0) + 1
                    continue
            col[row] = v
    out = {}
    for k, col in values.items():
        kind = kinds.get(k, _KIND_NUMBER)
        if fixed is None and kind > _KIND_VECTOR:
            out[k] = _vector_column(col, kind - _KIND_VECTOR)
            continue
        typ = _ARROW_OF_KIND[kind] if fixed is None else fixed
        out[k] = pa.array(col, type=typ)
    return out, mismatches


def _vector_column(col: List[Any], dim: int) -> pa.Array:
    """A vector feature's fixed_size_list<float64> column, as Go's builder
    writes it: null rows hold zero items, the items have no nulls."""
    flat: List[float] = []
    zeros = (0.0,) * dim
    for v in col:
        flat.extend(zeros if v is None else v)
    items = pa.array(flat, type=pa.float64())
    typ = pa.list_(pa.float64(), dim)
    if all(v is not None for v in col):
        return pa.FixedSizeListArray.from_arrays(items, type=typ)
    mask = pa.array([v is None for v in col], type=pa.bool_())
    return pa.FixedSizeListArray.from_arrays(items, type=typ, mask=mask)


def events_record_batch(events: Sequence[Event]) -> pa.RecordBatch:
    """The record batch of events of ONE model in the layout of schemas/arrow.go."""
    n = len(events)
    cols: List[pa.Array] = [
        pa.array([e.event_id for e in events], pa.string()),
        pa.array([e.model for e in events], pa.string()),
        pa.array([e.model_version for e in events], pa.string()),
        pa.array([e.time_ns // _NS_PER_MS for e in events], pa.int64()).cast(TIME_TYPE),
        pa.array([e.latency_ns / 1e6 if e.latency_ns else None for e in events], pa.float64()),
        pa.array([e.score for e in events], pa.float64()),
        pa.array([e.label or None for e in events], pa.string()),
        pa.array([e.value for e in events], pa.float64()),
    ]
    fields = list(FIXED_FIELDS)
    meta = {META_SCHEMA_VERSION: str(SCHEMA_VERSION)}
    for prefix, attr, fixed in (
        (PREFIX_PROBA, "probabilities", pa.float64()),
        (PREFIX_FEATURE, "features", None),
        (PREFIX_SEGMENT, "segments", pa.string()),
    ):
        group, mism = _dynamic_columns([getattr(e, attr) for e in events], n, fixed)
        for name in sorted(group, key=lambda s: s.encode("utf-8", "surrogatepass")):
            arr = group[name]
            cols.append(arr)
            fields.append(pa.field(prefix + name, arr.type))
            if name in mism:
                # A vector's mismatches are counted under its header feature.
                counted = VECTOR_HEADER_PREFIX + name if pa.types.is_fixed_size_list(arr.type) else name
                meta[META_TYPE_MISMATCH_PREFIX + counted] = str(mism[name])
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields, metadata=meta))


def labels_record_batch(labels: Sequence[Label]) -> pa.RecordBatch:
    """The record batch of labels of ONE model in the layout of schemas/label.go."""
    cols = [
        pa.array([lb.event_id for lb in labels], pa.string()),
        pa.array([lb.model for lb in labels], pa.string()),
        pa.array([lb.time_ns // _NS_PER_MS for lb in labels], pa.int64()).cast(TIME_TYPE),
        pa.array([lb.label_class for lb in labels], pa.string()),
        pa.array([lb.label_value for lb in labels], pa.float64()),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=LABEL_SCHEMA)


class ArrowEncoder:
    """Encodes record batches as Arrow IPC messages: one stream each, the
    schema, one record batch, the end-of-stream marker. Not thread-safe.

    Opening an IPC writer (and its compressor) per message costs more than
    compressing 1000 rows, so, like the Go encoder, it keeps an open writer
    for each of the last few schemas, captures the schema message it wrote
    first, and makes each message of that schema message, the batch message
    the writer appends, and the end-of-stream marker."""

    _EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
    _MAX_WRITERS = 4

    def __init__(self, compression: str = "zstd") -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression {compression!r} (want one of {COMPRESSIONS})")
        codec = None if compression == "none" else ("lz4" if compression == "lz4" else "zstd")
        self._options = pa.ipc.IpcWriteOptions(compression=codec)
        self._writers: List[List[Any]] = []  # [schema, writer, buffer, schema message], most recent first

    def encode(self, batch: pa.RecordBatch) -> bytes:
        schema = batch.schema
        ent = None
        for i, e in enumerate(self._writers):
            if e[0].equals(schema, check_metadata=True):
                ent = self._writers.pop(i)
                break
        if ent is None:
            buf = io.BytesIO()
            w = pa.ipc.new_stream(pa.PythonFile(buf, mode="w"), schema, options=self._options)
            ent = [schema, w, buf, None]
            if len(self._writers) >= self._MAX_WRITERS:
                self._writers.pop()
        self._writers.insert(0, ent)
        _, w, buf, schema_msg = ent
        try:
            w.write_batch(batch)
        except Exception:
            self._writers.pop(0)  # its state is unknown: drop it
            raise
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        if schema_msg is None:
            meta_len = int.from_bytes(out[4:8], "little")
            schema_msg = ent[3] = out[: 8 + meta_len]
            return out + self._EOS
        return schema_msg + out + self._EOS


def decode_arrow(data: bytes) -> pa.RecordBatch:
    """Reads one Arrow IPC message (for tests and tools): exactly one batch."""
    reader = pa.ipc.open_stream(pa.BufferReader(data))
    batches = list(reader)
    if len(batches) != 1:
        raise ValueError(f"arrow message holds {len(batches)} record batches, want 1")
    return batches[0]
