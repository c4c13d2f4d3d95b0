"""The cross-language wire vectors (testdata/wire at the repository root).

cases.json lists the events and labels of each case; go/ holds what the Go
encoders (schemas/wire) write for them, python/ what this SDK writes. This
module builds the Python side; make_vectors.py writes it; test_vectors.py
checks both directions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pyarrow as pa

from vigil import _wire
from vigil._wire import Event, Label

VECTOR_DIR = Path(__file__).resolve().parents[3] / "testdata" / "wire"


def load_cases() -> Dict[str, Any]:
    with open(VECTOR_DIR / "cases.json", encoding="utf-8") as f:
        return json.load(f)


def case_event(v: Dict[str, Any]) -> Event:
    probs = v.get("probabilities")
    segs = v.get("segments")
    return Event(
        event_id=_wire.check_name("event_id", v["event_id"]),
        model=v["model"],
        model_version=v.get("model_version", ""),
        time_ns=v["time_ns"],
        features=_wire.check_features({k: x for k, x in v.get("features", [])}),
        score=v.get("score"),
        label=v.get("label") or None,
        probabilities=_wire.check_probabilities({k: p for k, p in probs}) if probs else None,
        value=v.get("value"),
        latency_ns=v.get("latency_ns", 0),
        segments=_wire.check_segments({k: s for k, s in segs}) if segs else None,
    )


def case_label(v: Dict[str, Any]) -> Label:
    return Label(v["event_id"], v["model"], v.get("class"), v.get("value"), v["time_ns"])


_TYPES = {pa.string(): "utf8", pa.float64(): "float64", pa.bool_(): "bool", _wire.TIME_TYPE: "timestamp[ms, tz=UTC]"}


def canonical(batch: pa.RecordBatch) -> Dict[str, Any]:
    """The decoded form of an Arrow batch, computed as the Go test's
    canonicalRecord computes it."""
    fields: List[Dict[str, Any]] = []
    cols: Dict[str, Any] = {}
    for i, f in enumerate(batch.schema):
        col = batch.column(i)
        typ = _TYPES.get(f.type, str(f.type))
        if pa.types.is_fixed_size_list(f.type) and f.type.value_type == pa.float64():
            typ = f"fixed_size_list<float64>[{f.type.list_size}]"
        if pa.types.is_timestamp(f.type):
            col = col.cast(pa.int64())
        fields.append({"name": f.name, "type": typ, "nullable": f.nullable})
        cols[f.name] = col.to_pylist()
    md = {k.decode(): v.decode() for k, v in (batch.schema.metadata or {}).items()}
    return {"fields": fields, "metadata": md, "rows": batch.num_rows, "columns": cols}


def python_vectors() -> Dict[str, bytes]:
    """What the Python SDK writes for each case: file name -> bytes."""
    cases = load_cases()
    enc = _wire.ArrowEncoder("zstd")
    files: Dict[str, bytes] = {}
    for c in cases["events"]:
        events = [case_event(v) for v in c["events"]]
        batch = _wire.events_record_batch(events)
        msg = enc.encode(batch)
        files[c["case"] + ".arrow"] = msg
        files[c["case"] + ".jsonl"] = b"".join(_wire.event_json(e) + b"\n" for e in events)
        canon = canonical(_wire.decode_arrow(msg))
        files[c["case"] + ".canonical.json"] = (json.dumps(canon, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    for c in cases["labels"]:
        labels = [case_label(v) for v in c["labels"]]
        msg = enc.encode(_wire.labels_record_batch(labels))
        files[c["case"] + ".arrow"] = msg
        files[c["case"] + ".jsonl"] = b"".join(_wire.label_json(lb) + b"\n" for lb in labels)
        canon = canonical(_wire.decode_arrow(msg))
        files[c["case"] + ".canonical.json"] = (json.dumps(canon, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    return files
