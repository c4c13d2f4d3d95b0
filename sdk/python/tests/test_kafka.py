"""The producer against the real Kafka (VIGIL_KAFKA)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections import Counter

import numpy as np
import pytest

import vigil
from vigil import _wire
from conftest import REPO, consume_all, create_topics, free_port, headers, unique


def decode(m):
    enc = headers(m)[_wire.HEADER_ENCODING]
    if enc == b"arrow":
        return _wire.decode_arrow(m.value()).to_pylist()
    return [json.loads(m.value())]


@pytest.mark.parametrize("encoding", ["arrow", "json"])
def test_events_and_labels_reach_kafka_as_the_go_sdk_writes_them(kafka, topic, encoding):
    p = vigil.Producer(kafka, topic, encoding=encoding, batch_size=100, linger=0.02)
    for i in range(250):
        model = "fraud" if i % 5 else "churn"
        eid = p.record(model, event_id=f"e-{i}", model_version="3", features={"amount": float(i), "country": "DE" if i % 2 else "FR", "new": i % 3 == 0},
                       score=i / 250, label="fraud" if i % 7 == 0 else "ok", latency_ms=1.5, segments={"region": "eu"})
        assert eid == f"e-{i}"
    for i in range(0, 250, 10):
        assert p.record_label("fraud" if i % 5 else "churn", event_id=f"e-{i}", label=i % 20 == 0)
    p.close()
    assert p.stats() == vigil.Stats(recorded=275, sent=275, dropped=0, failed=0, invalid=0, unsent=0, buffered=0)

    msgs = consume_all(kafka, topic, want=250 if encoding == "json" else 3)
    rows = [r for m in msgs for r in decode(m)]
    assert sorted(r["event_id"] for r in rows) == sorted(f"e-{i}" for i in range(250))
    seqs = []
    for m in msgs:
        h = headers(m)
        assert h[_wire.HEADER_ENCODING] == encoding.encode()
        assert h[_wire.HEADER_SCHEMA_VERSION] == b"1"
        assert h[_wire.HEADER_PRODUCER] == p.id.encode() and len(p.id) == 32
        models = {r["model"] for r in decode(m)}
        assert models == {m.key().decode()}
        seqs.append((m.partition(), m.offset(), int(h[_wire.HEADER_SEQUENCE])))
    # Per partition, sequences increase with the offset (the processor's dedup relies on it).
    for part in {s[0] for s in seqs}:
        ps = [s[2] for s in sorted(s for s in seqs if s[0] == part)]
        assert ps == sorted(ps) and len(set(ps)) == len(ps)
    if encoding == "arrow":
        # 200 fraud events in batches of at most 100 (a linger may seal one early), 50 churn.
        assert len(msgs) >= 3 and all(len(decode(m)) <= 100 for m in msgs)
        r = rows[0]
        assert set(r) >= {"event_id", "model", "model_version", "event_time", "latency_ms", "pred_score", "f.amount", "f.country", "f.new", "s.region"}
    label_msgs = consume_all(kafka, topic + ".labels", want=25 if encoding == "json" else 1)  # all of model churn
    labels = [r for m in label_msgs for r in decode(m)]
    assert sorted(r["event_id"] for r in labels) == sorted(f"e-{i}" for i in range(0, 250, 10))
    assert all(headers(m)[_wire.HEADER_PRODUCER] == p.id.encode() for m in label_msgs)
    all_seqs = [int(headers(m)[_wire.HEADER_SEQUENCE]) for m in msgs + label_msgs]
    assert len(set(all_seqs)) == len(all_seqs), "sequences are per producer, events and labels alike"


INVALID = [
    (dict(model="", score=0.5), "model"),
    (dict(model="m" * 257, score=0.5), "model"),
    (dict(model="m", event_id="", score=0.5), "event_id"),
    (dict(model="m", event_id=3.5, score=0.5), "event_id"),
    (dict(model="m"), "prediction"),
    (dict(model="m", score=float("nan")), "score"),
    (dict(model="m", score="high"), "score"),
    (dict(model="m", value=float("inf")), "value"),
    (dict(model="m", probabilities={"a": 1.5}), "probabilities.a"),
    (dict(model="m", score=0.5, features={"amount": {"x": 1}}), "features.amount"),
    (dict(model="m", score=0.5, features={"amount": [1, "two"]}), "features.amount"),  # a vector holds numbers only
    (dict(model="m", score=0.5, features={"": 1.0}), "features name"),
    (dict(model="m", score=0.5, segments={"region": 3}), "segments.region"),
    (dict(model="m", score=0.5, latency_ms=-1.0), "latency_ms"),
    (dict(model="m", score=0.5, event_time="yesterday"), "event_time"),
    (dict(model="m", label="x" * 300), "label"),
]


@pytest.mark.parametrize("kwargs,field", INVALID, ids=[f for _, f in INVALID])
def test_invalid_events_are_refused_naming_the_field(kwargs, field):
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t")
    model = kwargs.pop("model")
    with pytest.raises(vigil.InvalidEventError) as ei:
        p.record(model, **kwargs)
    assert ei.value.field == field, str(ei.value)
    assert field in str(ei.value)
    assert p.stats().invalid == 1 and p.stats().recorded == 0
    p.close()  # nothing recorded, nothing lost


@pytest.mark.parametrize("kwargs,field", [
    (dict(model="m", event_id="e", label=None), "label"),
    (dict(model="m", event_id="", label=1), "event_id"),
    (dict(model="m", event_id="e", label=float("nan")), "label"),
    (dict(model="m", event_id="e", label=""), "label"),
])
def test_invalid_labels_are_refused_naming_the_field(kwargs, field):
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t")
    with pytest.raises(vigil.InvalidEventError) as ei:
        p.record_label(kwargs.pop("model"), **kwargs)
    assert ei.value.field == field
    p.close()


def test_unreachable_broker_fails_exactly_what_was_recorded():
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t", delivery_timeout=2.0, batch_size=100, linger=0.01)
    for i in range(1000):
        p.record("a" if i % 2 else "b", event_id=f"e{i}", score=0.5)
    for i in range(10):
        p.record_label("a", event_id=f"e{i}", label="x")
    with pytest.raises(vigil.LossError) as ei:
        p.flush(timeout=30)
    assert (ei.value.failed, ei.value.dropped, ei.value.unsent) == (1010, 0, 0)
    assert ei.value.reasons == {"Local: Message timed out": 1010}
    with pytest.raises(vigil.LossError) as ei:
        p.close(timeout=10)
    assert (ei.value.lost, ei.value.failed) == (1010, 1010)
    assert "1010 events not delivered" in str(ei.value)
    assert p.stats() == vigil.Stats(1010, 0, 0, 1010, 0, 0, 0)


def test_close_timeout_counts_held_events_as_unsent():
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t", delivery_timeout=60.0, batch_size=50)
    for i in range(500):
        p.record("a", event_id=f"e{i}", score=0.5)
    t0 = time.monotonic()
    with pytest.raises(vigil.LossError) as ei:
        p.close(timeout=1.0)
    assert time.monotonic() - t0 < 8
    assert (ei.value.unsent, ei.value.failed, ei.value.dropped) == (500, 0, 0)
    s = p.stats()
    assert (s.recorded, s.unsent, s.buffered) == (500, 500, 0)
    # After close, record drops and counts.
    assert p.record("a", score=0.5) is None
    assert p.stats().dropped == 1


def test_drop_policy_counts_every_refused_event():
    # One message in flight that can never be delivered: the batcher waits,
    # the buffer fills, record drops at once.
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t", delivery_timeout=60.0, batch_size=10, max_in_flight=1,
                       max_buffered_events=100)
    dropped_seen = []
    p._on_drop = dropped_seen.append
    results = [p.record("a", event_id=f"e{i}", score=0.5) for i in range(2000)]
    accepted = sum(r is not None for r in results)
    s = p.stats()
    assert s.recorded == accepted and s.dropped == 2000 - accepted
    # The buffer, plus at most one buffer-full the batcher took before it had to wait (as in Go).
    assert 100 <= accepted <= 210, accepted
    assert dropped_seen[-1] == s.dropped
    with pytest.raises(vigil.LossError) as ei:
        p.close(timeout=0.5)
    assert (ei.value.dropped, ei.value.unsent, ei.value.failed) == (2000 - accepted, accepted, 0)
    assert ei.value.reasons["buffer full"] == 2000 - accepted


def test_block_policy_waits_at_most_block_timeout():
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t", delivery_timeout=60.0, batch_size=10, max_in_flight=1,
                       max_buffered_events=50, full_policy="block", block_timeout=0.2)
    for i in range(200):
        if p.record("a", score=0.5) is None:
            break
    t0 = time.monotonic()
    assert p.record("a", score=0.5) is None
    waited = time.monotonic() - t0
    assert 0.19 <= waited < 1.0, waited
    with pytest.raises(vigil.LossError):
        p.close(timeout=0.5)


def test_block_policy_loses_nothing_when_kafka_keeps_up(kafka, topic):
    p = vigil.Producer(kafka, topic, max_buffered_events=20, batch_size=20, full_policy="block", block_timeout=5.0)
    for i in range(3000):
        assert p.record("a", event_id=f"e{i}", score=0.5) is not None
    p.close()
    assert p.stats() == vigil.Stats(3000, 3000, 0, 0, 0, 0, 0)
    rows = sum(_wire.decode_arrow(m.value()).num_rows for m in consume_all(kafka, topic, want=150))
    assert rows == 3000


def test_many_threads_recording(kafka, topic):
    p = vigil.Producer(kafka, topic, full_policy="block", block_timeout=10.0, max_buffered_events=5000)
    n_threads, per = 8, 4000

    def work(k):
        for i in range(per):
            p.record(f"m{k % 3}", features={"x": float(i)}, score=0.5)
            if i % 500 == 0:
                p.record_label(f"m{k % 3}", event_id=f"t{k}-{i}", label=1)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    p.close()
    total = n_threads * per
    labels = n_threads * (per // 500)
    assert p.stats() == vigil.Stats(total + labels, total + labels, 0, 0, 0, 0, 0)
    msgs = consume_all(kafka, topic, idle=3.0)
    ids = [r["event_id"] for m in msgs for r in _wire.decode_arrow(m.value()).to_pylist()]
    assert len(ids) == total and len(set(ids)) == total  # made-up ids are unique across threads
    per_model = Counter(r["model"] for m in msgs for r in _wire.decode_arrow(m.value()).to_pylist())
    assert per_model == Counter({f"m{k}": per * sum(1 for j in range(n_threads) if j % 3 == k) for k in range(3)})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_gets_a_fresh_producer(kafka, topic):
    p = vigil.Producer(kafka, topic)
    p.record("parent", event_id="p-0", score=0.5)
    p.flush(30)
    pid = os.fork()
    if pid == 0:  # the child: as a gunicorn worker after a preload
        code = 1
        try:
            for i in range(100):
                p.record("child", event_id=f"c-{i}", score=0.5)
            p.close(30)
            s = p.stats()
            code = 0 if (s.recorded, s.sent) == (100, 100) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent_id = p.id
    p.close()
    msgs = consume_all(kafka, topic, want=2)
    by = {m.key(): headers(m)[_wire.HEADER_PRODUCER] for m in msgs}
    assert by[b"parent"] == parent_id.encode()
    assert by[b"child"] != parent_id.encode(), "the child has a producer id of its own"
    assert sum(_wire.decode_arrow(m.value()).num_rows for m in msgs if m.key() == b"child") == 100


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory):
    """A Kafka broker of this test's own (deployments/local/kafka.sh on free
    ports), which the test stops mid-run."""
    if subprocess.run([str(REPO / "deployments/local/kafka.sh"), "installed"], capture_output=True).returncode != 0:
        pytest.fail("java or the Kafka jars are missing: run deployments/local/kafka.sh install")
    state = tmp_path_factory.mktemp("kafka")
    port, cport = free_port(), free_port()
    env = dict(os.environ, VIGIL_STATE=str(state), VIGIL_KAFKA_PORT=str(port), VIGIL_KAFKA_CONTROLLER_PORT=str(cport),
               VIGIL_KAFKA_HEAP="-Xms128m -Xmx256m")
    script = str(REPO / "deployments/local/kafka.sh")
    subprocess.run([script, "start"], env=env, check=True, capture_output=True, timeout=180)
    broker = {"addr": f"127.0.0.1:{port}", "stop": lambda: subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)}
    yield broker
    broker["stop"]()


def test_broker_stopped_mid_run_losses_are_exact(private_broker):
    brokers = private_broker["addr"]
    topic = unique("pysdk-stop")
    create_topics(brokers, topic, topic + ".labels", partitions=2)
    p = vigil.Producer(brokers, topic, delivery_timeout=3.0, batch_size=100, linger=0.01)
    for i in range(2000):
        p.record("a" if i % 2 else "b", event_id=f"e{i}", score=0.5)
    p.record_label("a", event_id="e1", label=1)
    p.flush(30)
    assert p.stats().sent == 2001
    rows = sum(_wire.decode_arrow(m.value()).num_rows for m in consume_all(brokers, topic, want=20))
    assert rows == 2000

    private_broker["stop"]()
    for i in range(700):
        p.record("a", event_id=f"late{i}", score=0.5)
    for i in range(5):
        p.record_label("a", event_id=f"late{i}", label=0)
    with pytest.raises(vigil.LossError) as ei:
        p.close(timeout=30)
    assert (ei.value.failed, ei.value.dropped, ei.value.unsent) == (705, 0, 0), str(ei.value)
    assert sum(ei.value.reasons.values()) == 705
    assert p.stats() == vigil.Stats(2706, 2001, 0, 705, 0, 0, 0)


def test_known_feature_names_still_have_their_values_checked():
    p = vigil.Producer(f"127.0.0.1:{free_port()}", "t")
    assert p.record("m", features={"a": 1.0, "b": "x"}, score=0.5) is not None  # names remembered
    with pytest.raises(vigil.InvalidEventError) as ei:
        p.record("m", features={"a": [1.0, "x"], "b": "x"}, score=0.5)  # not a vector of numbers
    assert ei.value.field == "features.a"
    with pytest.raises(vigil.InvalidEventError) as ei:
        p.record("m", features={"a": 1.0, "": "x"}, score=0.5)
    assert ei.value.field == "features name"
    assert (p.stats().recorded, p.stats().invalid) == (1, 2)
    with pytest.raises(vigil.LossError):
        p.close(timeout=0.5)
