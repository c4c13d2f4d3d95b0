"""record_frame, record_proba, vigil.monitor and the FastAPI example."""

from __future__ import annotations

import importlib
import json
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import vigil
from vigil import _wire
from vigil._frame import batch_events, frame_batch
from conftest import REPO, consume_all, free_port, headers


def fb(df, **kw):
    args = dict(score=None, label=None, value=None, probabilities=None, id=None, id_prefix="p-", event_time=None,
                latency_ms=None, segments=None, features=None)
    args.update(kw)
    return frame_batch("fraud", "3", df, **args)


def test_frame_becomes_the_layout_in_columns():
    t0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
    df = pd.DataFrame({
        "request_id": ["r1", "r2", "r3"],
        "proba": [0.9, 0.1, np.nan],
        "amount": [12.5, np.nan, 3],
        "n_items": [1, 2, 3],
        "country": pd.Categorical(["DE", "FR", None]),
        "is_new": [True, False, True],
        "region": ["eu", "us", "eu"],
        "lat": [4.2, 0.0, 1.0000004],
        "pred": ["fraud", "ok", "ok"],
    })
    b = fb(df, score="proba", id="request_id", label="pred", segments=["region"], latency_ms="lat", event_time=t0)
    assert b.schema.names == ["event_id", "model", "model_version", "event_time", "latency_ms", "pred_score",
                              "pred_label", "pred_value", "f.amount", "f.country", "f.is_new", "f.n_items", "s.region"]
    assert b.schema.metadata == {b"vigil.schema_version": b"1"}
    assert [f.type for f in b.schema][8:] == [pa.float64(), pa.string(), pa.bool_(), pa.float64(), pa.string()]
    rows = b.to_pylist()
    assert [r["event_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[0]["pred_score"] == 0.9 and rows[2]["pred_score"] is None
    assert rows[1]["f.amount"] is None and rows[2]["f.country"] is None
    assert [r["latency_ms"] for r in rows] == [4.2, None, 1.0]  # 0 = not reported; ns precision as record()
    assert {r["event_time"] for r in rows} == {t0}
    # The same rows through record()'s path encode the same JSON.
    evs = batch_events(b)
    assert json.loads(_wire.event_json(evs[0])) == {
        "event_id": "r1", "model": "fraud", "model_version": "3", "event_time": "2026-11-26T10:00:00Z",
        "features": {"amount": 12.5, "country": "DE", "is_new": True, "n_items": 1},
        "prediction": {"score": 0.9, "label": "fraud"}, "latency_ms": 4.2, "segments": {"region": "eu"},
    }


def test_frame_made_up_ids_and_time_column():
    tbl = pa.table({"score": [0.5, 0.6], "ts": pa.array([1764151200.5, 1764151201.0])})
    b = fb(tbl, score="score", event_time="ts", id_prefix="abc-")
    assert b.column(0).to_pylist() == ["abc-0", "abc-1"]
    assert b.column(3).cast(pa.int64()).to_pylist() == [1764151200500, 1764151201000]
    assert "f.ts" not in b.schema.names


@pytest.mark.parametrize("df,kw,field", [
    (pd.DataFrame({"s": [0.5, float("inf")]}), dict(score="s"), "score"),
    (pd.DataFrame({"s": [0.5, None]}), dict(score="s"), "prediction"),
    (pd.DataFrame({"s": [0.5]}), dict(score="nope"), "score"),
    (pd.DataFrame({"s": [0.5], "id": [None]}), dict(score="s", id="id"), "event_id"),
    (pd.DataFrame({"s": [0.5], "p": [1.5]}), dict(score="s", probabilities=["p"]), "probabilities.p"),
    (pd.DataFrame({"s": [0.5], "when": [pd.Timestamp("2026-01-01")]}), dict(score="s"), "features.when"),
    (pd.DataFrame({"s": [0.5], "l": [-1.0]}), dict(score="s", latency_ms="l"), "latency_ms"),
])
def test_frame_refused_naming_the_column(df, kw, field):
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t")
    with pytest.raises(vigil.InvalidEventError) as ei:
        p.record_frame("fraud", "3", df, **kw)
    assert ei.value.field == field, str(ei.value)
    assert p.stats().invalid == len(df) and p.stats().recorded == 0
    p.close()


def test_record_proba_from_scikit_learn(kafka, topic):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"amount": rng.normal(100, 20, 400), "age": rng.integers(18, 80, 400).astype(float)})
    y = np.where(X["amount"] > 100, "fraud", "ok")
    clf = LogisticRegression().fit(X, y)
    P = clf.predict_proba(X)
    p = vigil.Producer(kafka, topic, batch_size=150)
    n = p.record_proba("fraud", "3", P, classes=clf.classes_, X=X, ids=[f"r{i}" for i in range(400)],
                       latency_ms=2.0, segments={"region": "eu"})
    assert n == 400
    p.close()
    msgs = consume_all(kafka, topic, want=3)
    assert len(msgs) == 3  # 400 rows in batches of at most 150
    rows = [r for m in msgs for r in _wire.decode_arrow(m.value()).to_pylist()]
    assert len(rows) == 400
    batch = _wire.decode_arrow(msgs[0].value())
    assert batch.schema.names == ["event_id", "model", "model_version", "event_time", "latency_ms", "pred_score", "pred_label",
                                  "pred_value", "proba.fraud", "proba.ok", "f.age", "f.amount", "s.region"]
    by = {r["event_id"]: r for r in rows}
    pred = clf.predict(X)
    for i in (0, 17, 399):
        r = by[f"r{i}"]
        assert r["pred_label"] == pred[i]
        assert r["proba.fraud"] == P[i, 0] and r["pred_score"] == P[i, 1]  # score: the second class, as scikit-learn
        assert r["f.amount"] == X["amount"][i] and r["s.region"] == "eu" and r["latency_ms"] == 2.0


def test_monitor_decorator_and_context_manager(kafka, topic):
    p = vigil.Producer(kafka, topic, encoding="json")

    @vigil.monitor(p, "fraud", model_version="3")
    def predict(features):
        return 0.25

    @vigil.monitor(p, "price", output="value", event_id=lambda x: f"q-{x}", features=lambda x: {"x": x})
    async def price(x):
        return x * 2.0

    import asyncio

    assert predict({"amount": 3.0}) == 0.25
    assert asyncio.run(price(21)) == 42.0
    with vigil.monitor(p, "churn", features={"tenure": 12}) as m:
        m.label = "stays"
    assert m.event_id is not None
    with pytest.raises(ZeroDivisionError):
        with vigil.monitor(p, "churn", features={"tenure": 1}) as m2:
            m2.label = 1 / 0  # not recorded
    p.close()
    got = {json.loads(m.value())["model"]: json.loads(m.value()) for m in consume_all(kafka, topic, want=3)}
    assert set(got) == {"fraud", "price", "churn"}
    assert got["fraud"]["features"] == {"amount": 3} and got["fraud"]["prediction"] == {"score": 0.25}
    assert got["fraud"]["latency_ms"] > 0 and got["fraud"]["model_version"] == "3"
    assert got["price"]["event_id"] == "q-21" and got["price"]["prediction"] == {"value": 42}
    assert got["churn"]["prediction"] == {"label": "stays"} and got["churn"]["event_id"] == m.event_id


def test_fastapi_example(kafka, topic, monkeypatch):
    from fastapi.testclient import TestClient

    monkeypatch.setenv("VIGIL_KAFKA", kafka)
    monkeypatch.setenv("VIGIL_TOPIC", topic)
    sys.path.insert(0, str(REPO / "sdk" / "python"))
    try:
        mod = importlib.import_module("examples.fastapi_app")
        mod = importlib.reload(mod)
    finally:
        sys.path.pop(0)
    with TestClient(mod.app) as client:
        r = client.post("/predict", json={"request_id": "req-1", "features": {"amount": 500, "country": "DE"}})
        assert r.status_code == 200 and r.json() == {"request_id": "req-1", "score": 0.5}
        assert client.post("/label", json={"request_id": "req-1", "label": 1}).json() == {"recorded": True}
    s = mod.producer.stats()  # closed by the app's lifespan
    assert (s.sent, s.recorded) == (4, 4)
    msgs = consume_all(kafka, topic, want=2)
    rows = {m.key(): _wire.decode_arrow(m.value()).to_pylist()[0] for m in msgs}
    assert rows[b"fraud"]["event_id"] == "req-1" and rows[b"fraud"]["pred_score"] == 0.5 and rows[b"fraud"]["f.amount"] == 500
    assert rows[b"http"]["pred_label"] == "200" and rows[b"http"]["s.route"] == "/predict"
    labels = consume_all(kafka, topic + ".labels", want=1)
    assert _wire.decode_arrow(labels[0].value()).to_pylist()[0]["label_value"] == 1.0
