"""Frames (pandas DataFrames, pyarrow Tables) to event batches, vectorised.

A frame becomes Arrow columns in one conversion (pa.Table.from_pandas),
each column is cast and checked with pyarrow compute kernels, and the batch
is assembled in the layout of schemas/arrow.go. No Python loop runs over
rows; the loops here are over columns.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _wire
from ._wire import Event, InvalidEventError


def _to_table(df: Any) -> pa.Table:
    if isinstance(df, pa.Table):
        return df
    if isinstance(df, pa.RecordBatch):
        return pa.Table.from_batches([df])
    mod = type(df).__module__
    if mod.startswith("pandas"):
        return pa.Table.from_pandas(df, preserve_index=False)
    if isinstance(df, Mapping):
        return pa.table(dict(df))
    raise InvalidEventError("df", f"want a pandas DataFrame or a pyarrow Table, got {type(df).__name__}")


def _is_string_view(t: pa.DataType) -> bool:
    f = getattr(pa.types, "is_string_view", None)  # pyarrow >= 16
    return bool(f and f(t))


def _first(mask: pa.Array) -> int:
    """Index of the first true value of a boolean array."""
    return int(pc.indices_nonzero(mask.fill_null(False))[0].as_py())


def _const_str(s: str, n: int) -> pa.Array:
    b = s.encode("utf-8", "surrogatepass")
    offsets = np.arange(n + 1, dtype=np.int32) * len(b)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(b * n)])


def _const_time(ms: int, n: int) -> pa.Array:
    return pa.Array.from_buffers(_wire.TIME_TYPE, n, [None, pa.py_buffer(np.full(n, ms, dtype=np.int64))])


def _flat(a: Union[pa.ChunkedArray, pa.Array]) -> pa.Array:
    if isinstance(a, pa.ChunkedArray):
        return a.combine_chunks() if a.num_chunks != 1 else a.chunk(0)
    return a


def _check_len(field: str, arr: pa.Array, allow_empty: bool) -> None:
    lens = pc.binary_length(arr)
    bad = pc.greater(lens, _wire.MAX_NAME_LEN)
    if not allow_empty:
        bad = pc.or_(bad, pc.equal(lens, 0))
    if pc.any(bad).as_py():
        row = _first(bad)
        raise InvalidEventError(field, f"row {row}: {'empty or ' if not allow_empty else ''}longer than {_wire.MAX_NAME_LEN} bytes")


def _to_str(field: str, a: pa.Array) -> pa.Array:
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.dictionary_decode()
        t = a.type
    if pa.types.is_string(t):
        return a
    if pa.types.is_large_string(t) or _is_string_view(t) or pa.types.is_integer(t) or pa.types.is_boolean(t):
        return pc.cast(a, pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(a), pa.string())
    raise InvalidEventError(field, f"column type {t} (want strings)")


def _to_f64(field: str, a: pa.Array, lo: float = -math.inf, hi: float = math.inf, finite: bool = True) -> pa.Array:
    t = a.type
    if pa.types.is_null(t):
        return pa.nulls(len(a), pa.float64())
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
        raise InvalidEventError(field, f"column type {t} (want numbers)")
    a = pc.cast(a, pa.float64())
    if finite or lo > -math.inf or hi < math.inf:
        ok = pc.and_(pc.greater_equal(a, lo), pc.less_equal(a, hi))  # NaN compares false
        if finite:
            ok = pc.and_(ok, pc.is_finite(a))
        bad = pc.invert(ok)
        if pc.any(bad).as_py():
            row = _first(bad)
            raise InvalidEventError(field, f"row {row}: {a[row].as_py()} not a finite number in [{lo}, {hi}]")
    return a


def _feature(field: str, a: pa.Array) -> pa.Array:
    t = a.type
    if pa.types.is_dictionary(t):
        a = a.dictionary_decode()
        t = a.type
    if pa.types.is_floating(t) and t == pa.float64():
        return a
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return pc.cast(a, pa.float64())
    if pa.types.is_boolean(t):
        return a
    if pa.types.is_string(t):
        return a
    if pa.types.is_large_string(t) or _is_string_view(t):
        return pc.cast(a, pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(a), pa.float64())
    if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
        pa.types.is_integer(t.value_type) or pa.types.is_floating(t.value_type)
    ):
        return _vectors(field, a)
    raise InvalidEventError(field, f"column type {t} (want numbers, strings, bools or lists of numbers)")


def _vectors(field: str, a: pa.Array) -> pa.Array:
    """A column of lists of numbers as a vector feature's
    fixed_size_list<float64> column, as Go's builder writes it (null rows
    hold zero items): every non-null row of one length, 1 to 4096, finite
    items."""
    if field.endswith("]"):
        raise InvalidEventError(field, "a vector's name must not end in ']'")
    lengths = pc.list_value_length(a)
    mm = pc.min_max(lengths)
    lo, hi = mm["min"].as_py(), mm["max"].as_py()
    if lo is None:  # every row null: a missing feature
        return pa.nulls(len(a), pa.float64())
    if lo != hi:
        first = _first(pc.is_valid(lengths))
        want = lengths[first].as_py()
        row = _first(pc.not_equal(lengths, want))
        raise InvalidEventError(field, f"row {row}: vector of {lengths[row].as_py()} values where row {first} has {want}")
    if not 1 <= lo <= _wire.MAX_VECTOR_DIM:
        raise InvalidEventError(field, f"vectors of {lo} values (want 1 to {_wire.MAX_VECTOR_DIM})")
    nulls = pc.is_null(a)
    if a.null_count:
        a = pc.if_else(nulls, pa.scalar([0] * lo, a.type), a)
    items = pc.list_flatten(a)
    if items.null_count:
        raise InvalidEventError(field, "a vector holds a null (or, from pandas, NaN) item")
    items = pc.cast(items, pa.float64())
    bad = pc.invert(pc.is_finite(items))
    if pc.any(bad).as_py():
        raise InvalidEventError(field, f"row {_first(bad) // lo}: vector element {_first(bad) % lo} is not finite")
    typ = pa.list_(pa.float64(), lo)
    if pc.any(nulls).as_py():
        return pa.FixedSizeListArray.from_arrays(items, type=typ, mask=nulls)
    return pa.FixedSizeListArray.from_arrays(items, type=typ)


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")


def frame_batch(
    model: str,
    model_version: str,
    df: Any,
    *,
    score: Optional[str],
    label: Optional[str],
    value: Optional[str],
    probabilities: Optional[Union[Mapping[str, str], Sequence[str]]],
    id: Optional[str],
    id_prefix: str,
    event_time: Any,
    latency_ms: Optional[str],
    segments: Optional[Sequence[str]],
    features: Optional[Sequence[str]],
) -> pa.RecordBatch:
    """The record batch of a frame's rows as events of model, in the layout."""
    table = _to_table(df)
    n = table.num_rows
    names = table.column_names
    if len(set(names)) != len(names):
        dup = next(x for x in names if names.count(x) > 1)
        raise InvalidEventError(f"column {dup}", "appears more than once")
    used = set()

    def col(name: Optional[str], field: str) -> Optional[pa.Array]:
        if name is None:
            return None
        if name not in names:
            raise InvalidEventError(field, f"no column {name!r} in the frame (columns: {', '.join(names[:20])})")
        used.add(name)
        return _flat(table.column(name))

    # event_id
    ids = col(id, "event_id")
    if ids is None:
        ids = pc.binary_join_element_wise(
            pa.scalar(id_prefix), pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), ""
        )
    else:
        ids = _to_str("event_id", ids)
        if ids.null_count:
            raise InvalidEventError("event_id", f"row {_first(ids.is_null())}: null")
        _check_len("event_id", ids, allow_empty=False)

    # event_time
    if isinstance(event_time, str):
        t = col(event_time, "event_time")
        assert t is not None
        if pa.types.is_timestamp(t.type):
            if t.type.tz is None:  # naive timestamps are UTC
                t = t.cast(pa.timestamp(t.type.unit, tz="UTC"))
            times = t.cast(_wire.TIME_TYPE, safe=False)
        elif pa.types.is_integer(t.type) or pa.types.is_floating(t.type):
            secs = pc.cast(t, pa.float64())
            times = pc.cast(pc.floor(pc.multiply(secs, 1000.0)), pa.int64()).cast(_wire.TIME_TYPE)
        else:
            raise InvalidEventError("event_time", f"column type {t.type} (want timestamps or Unix seconds)")
        if times.null_count:
            raise InvalidEventError("event_time", f"row {_first(times.is_null())}: null")
    else:
        from ._producer import _time_ns

        ns = time.time_ns() if event_time is None else _time_ns(event_time)
        times = _const_time(ns // 1_000_000, n)

    # latency: 0 or null = not reported; ms rounded to ns as record() does
    lat = col(latency_ms, "latency_ms")
    if lat is None:
        lat = pa.nulls(n, pa.float64())
    else:
        lat = _to_f64("latency_ms", lat, 0.0, float(_wire.MAX_LATENCY_MS))
        lat = pc.divide(pc.round(pc.multiply(lat, 1e6)), 1e6)
        lat = pc.if_else(pc.equal(lat, 0.0), pa.scalar(None, pa.float64()), lat)

    sc = col(score, "score")
    sc = pa.nulls(n, pa.float64()) if sc is None else _to_f64("score", sc)
    va = col(value, "value")
    va = pa.nulls(n, pa.float64()) if va is None else _to_f64("value", va)
    lb = col(label, "label")
    if lb is None:
        lb = pa.nulls(n, pa.string())
    else:
        lb = _to_str("label", lb)
        _check_len("label", lb, allow_empty=True)
        lb = pc.if_else(pc.equal(lb, ""), pa.scalar(None, pa.string()), lb)

    probas: List[Tuple[str, pa.Array]] = []
    if probabilities is not None:
        pairs = probabilities.items() if isinstance(probabilities, Mapping) else [(c, c) for c in probabilities]
        for cls, cname in pairs:
            cls = _wire.check_name("probabilities class", str(cls))
            a = col(cname, f"probabilities.{cls}")
            assert a is not None
            probas.append((cls, _to_f64(f"probabilities.{cls}", a, 0.0, 1.0)))

    # Every row needs a prediction.
    if not (sc.null_count == 0 or va.null_count == 0 or lb.null_count == 0 or any(a.null_count == 0 for _, a in probas)):
        none = pc.and_(pc.is_null(sc), pc.and_(pc.is_null(va), pc.is_null(lb)))
        for _, a in probas:
            none = pc.and_(none, pc.is_null(a))
        if n and pc.any(none).as_py():
            raise InvalidEventError("prediction", f"row {_first(none)}: missing (give score, label, probabilities or value)")

    segs: List[Tuple[str, pa.Array]] = []
    for s in segments or []:
        a = col(s, f"segments.{s}")
        assert a is not None
        name = _wire.check_name("segments key", s)
        segs.append((name, _to_str(f"segments.{s}", a)))

    feats: List[Tuple[str, pa.Array]] = []
    fnames = [c for c in names if c not in used] if features is None else list(features)
    for f in fnames:
        a = col(f, f"features.{f}")
        assert a is not None
        name = _wire.check_name("features name", f)
        feats.append((name, _feature(f"features.{f}", a)))

    arrays: List[pa.Array] = [
        ids, _const_str(model, n), _const_str(model_version, n), times, lat, sc, lb, va,
    ]
    fields = list(_wire.FIXED_FIELDS)
    for prefix, group in ((_wire.PREFIX_PROBA, probas), (_wire.PREFIX_FEATURE, feats), (_wire.PREFIX_SEGMENT, segs)):
        seen = set()
        for name, a in sorted(group, key=lambda x: _sort_key(x[0])):
            if name in seen:
                raise InvalidEventError(prefix + name, "given twice")
            seen.add(name)
            arrays.append(a)
            fields.append(pa.field(prefix + name, a.type))
    schema = pa.schema(fields, metadata={_wire.META_SCHEMA_VERSION: str(_wire.SCHEMA_VERSION)})
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def batch_events(batch: pa.RecordBatch) -> List[Event]:
    """The events of a batch in the layout (for the JSON encodings)."""
    names = batch.schema.names
    cols = {name: batch.column(i).to_pylist() for i, name in enumerate(names)}
    times = batch.column(3).cast(pa.int64()).to_pylist()
    groups = {p: [(nm[len(p):], cols[nm]) for nm in names[8:] if nm.startswith(p)]
              for p in (_wire.PREFIX_PROBA, _wire.PREFIX_FEATURE, _wire.PREFIX_SEGMENT)}
    out = []
    for r in range(batch.num_rows):
        lat = cols[_wire.COL_LATENCY_MS][r]
        probs = {c: v[r] for c, v in groups[_wire.PREFIX_PROBA] if v[r] is not None}
        segs = {c: v[r] for c, v in groups[_wire.PREFIX_SEGMENT] if v[r] is not None}
        out.append(Event(
            cols[_wire.COL_EVENT_ID][r], cols[_wire.COL_MODEL][r], cols[_wire.COL_MODEL_VERSION][r],
            times[r] * 1_000_000,
            {c: tuple(v[r]) if type(v[r]) is list else v[r] for c, v in groups[_wire.PREFIX_FEATURE]},
            cols[_wire.COL_PRED_SCORE][r], cols[_wire.COL_PRED_LABEL][r], probs or None,
            cols[_wire.COL_PRED_VALUE][r], round(lat * 1e6) if lat else 0, segs or None,
        ))
    return out


def proba_table(
    proba: Any,
    *,
    classes: Optional[Sequence[Any]],
    X: Any,
    ids: Any,
    feature_names: Optional[Sequence[str]],
    latency_ms: Optional[float],
    segments: Optional[Mapping[str, str]],
) -> Tuple[pa.Table, Dict[str, Any]]:
    """A frame and record_frame's arguments for a predict_proba batch."""
    P = np.asarray(proba, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 1:
        raise InvalidEventError("proba", f"want an array of shape [n, classes], got shape {P.shape}")
    n, k = P.shape
    cls = list(range(k)) if classes is None else list(classes)
    if len(cls) != k:
        raise InvalidEventError("classes", f"{len(cls)} classes for {k} probability columns")
    names = [_class_name(c) for c in cls]
    cols: Dict[str, Any] = {}
    probs: Dict[str, str] = {}
    for j, c in enumerate(names):
        cols[f"__vigil_proba_{j}"] = P[:, j]
        probs[c] = f"__vigil_proba_{j}"
    cols["__vigil_label"] = pa.array(np.asarray(names, dtype=object)[np.argmax(P, axis=1)] if n else [], pa.string())
    kw: Dict[str, Any] = {"label": "__vigil_label", "probabilities": probs}
    if k == 2:
        cols["__vigil_score"] = P[:, 1]
        kw["score"] = "__vigil_score"
    if ids is not None:
        cols["__vigil_id"] = pa.array(np.asarray(ids)).cast(pa.string()) if not isinstance(ids, pa.Array) else ids
        kw["id"] = "__vigil_id"
    if latency_ms is not None:
        cols["__vigil_latency"] = np.full(n, float(latency_ms))
        kw["latency_ms"] = "__vigil_latency"
    seg_cols = []
    for key, v in (segments or {}).items():
        cname = f"__vigil_segment_{key}"
        cols[cname] = _const_str(str(v), n)
        seg_cols.append(cname)
    feats: List[str] = []
    if X is not None:
        xt = _to_table(X) if not isinstance(X, np.ndarray) else None
        if xt is None:
            Xa = np.asarray(X)
            if Xa.ndim != 2 or Xa.shape[0] != n:
                raise InvalidEventError("X", f"want {n} rows of features, got shape {Xa.shape}")
            fn = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(Xa.shape[1])]
            if len(fn) != Xa.shape[1]:
                raise InvalidEventError("feature_names", f"{len(fn)} names for {Xa.shape[1]} columns")
            for j, name in enumerate(fn):
                cols[str(name)] = Xa[:, j]
                feats.append(str(name))
        else:
            if xt.num_rows != n:
                raise InvalidEventError("X", f"{xt.num_rows} rows for {n} probability rows")
            for name in xt.column_names:
                cols[name] = _flat(xt.column(name))
                feats.append(name)
    table = pa.table({k2: (v if isinstance(v, pa.Array) else pa.array(v)) for k2, v in cols.items()})
    # Segments are named by key, not by their internal column name.
    renamed = [c[len("__vigil_segment_"):] if c.startswith("__vigil_segment_") else c for c in table.column_names]
    table = table.rename_columns(renamed)
    kw["segments"] = [c[len("__vigil_segment_"):] for c in seg_cols]
    kw["features"] = feats
    return table, kw


def _class_name(c: Any) -> str:
    if isinstance(c, (bool, np.bool_)):
        return "true" if c else "false"
    if hasattr(c, "item"):
        c = c.item()
    return str(c)
