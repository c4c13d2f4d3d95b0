"""The HTTP transport against the real `vigil gateway` (built from this
repository) publishing to the real Kafka: what the gateway accepted is in
Kafka exactly once, what it refused is counted as failed with its reason."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

import pytest

import vigil
from vigil import _wire
from conftest import consume_all, create_topics, delete_topics, free_port, unique


@pytest.fixture
def gateway(kafka, vigil_bin, tmp_path):
    topic = unique("pysdk-gw")
    create_topics(kafka, topic, topic + ".labels", partitions=2)
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens:\n  - token: s3cret-token\n    name: pytest\n    models: [fraud, churn]\n")
    port = free_port()
    log = open(tmp_path / "gateway.log", "w")
    proc = subprocess.Popen(
        [str(vigil_bin), "gateway", "--http-addr", f"127.0.0.1:{port}", "--kafka", kafka, "--topic", topic,
         "--gateway-tokens", str(tokens), "--gateway-linger", "20ms"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            pytest.fail("vigil gateway did not get ready: " + open(tmp_path / "gateway.log").read()[-2000:])
        time.sleep(0.2)
    yield {"url": url, "topic": topic}
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    delete_topics(kafka, topic, topic + ".labels")


def test_through_the_real_gateway(kafka, gateway):
    p = vigil.Producer(gateway_url=gateway["url"], token="s3cret-token", batch_size=200)
    for i in range(600):
        model = "fraud" if i % 3 else "churn"
        p.record(model, event_id=f"e-{i}", model_version="2", features={"amount": float(i), "country": "DE"},
                 score=0.25, latency_ms=3.0)
    for i in range(0, 600, 30):
        p.record_label("fraud" if i % 3 else "churn", event_id=f"e-{i}", label=1)
    for i in range(7):  # a model the token may not publish for
        p.record("other", event_id=f"o-{i}", score=0.5)
    with pytest.raises(vigil.LossError) as ei:
        p.close(timeout=60)
    assert (ei.value.failed, ei.value.dropped, ei.value.unsent) == (7, 0, 0), str(ei.value)
    assert sum(ei.value.reasons.values()) == 7 and all("gateway" in r for r in ei.value.reasons), ei.value.reasons
    assert p.stats() == vigil.Stats(627, 620, 0, 7, 0, 0, 0)

    msgs = consume_all(kafka, gateway["topic"], want=2)
    rows = [r for m in msgs for r in _wire.decode_arrow(m.value()).to_pylist()]
    assert sorted(r["event_id"] for r in rows) == sorted(f"e-{i}" for i in range(600))  # each once
    assert {r["model"] for r in rows} == {"fraud", "churn"}
    r0 = next(r for r in rows if r["event_id"] == "e-1")
    assert (r0["f.amount"], r0["f.country"], r0["pred_score"], r0["latency_ms"], r0["model_version"]) == (1.0, "DE", 0.25, 3.0, "2")
    labels = [r for m in consume_all(kafka, gateway["topic"] + ".labels", want=1) for r in _wire.decode_arrow(m.value()).to_pylist()]
    assert sorted(r["event_id"] for r in labels) == sorted(f"e-{i}" for i in range(0, 600, 30))


def test_real_gateway_refuses_a_wrong_token(gateway):
    p = vigil.Producer(gateway_url=gateway["url"], token="wrong")
    for i in range(5):
        p.record("fraud", score=0.5)
    with pytest.raises(vigil.LossError) as ei:
        p.close()
    assert ei.value.failed == 5
    assert all(r.startswith("gateway refused the token (401)") for r in ei.value.reasons), ei.value.reasons
