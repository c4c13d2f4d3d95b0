"""The HTTP transport against a local server that speaks the gateway's
contract (POST /v1/events and /v1/labels, NDJSON, Bearer token, the
accepted/rejected answer, 207/400/401/413/429/503)."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import vigil
from conftest import free_port


class Gateway:
    """A gateway stand-in: keeps what it accepted; rejects events whose id
    starts with "bad"; answers from a script of statuses first."""

    def __init__(self, token="s3cret", max_body=1 << 20):
        self.token = token
        self.max_body = max_body
        self.script = []  # statuses (with Retry-After) to answer before accepting
        self.events, self.labels, self.requests = [], [], []
        self.lock = threading.Lock()
        gw = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with gw.lock:
                    gw.requests.append((self.path, dict(self.headers), len(raw)))
                    scripted = gw.script.pop(0) if gw.script else None
                if isinstance(scripted, int):
                    return self.reply(scripted, {"error": "scripted"}, {"Retry-After": "0.2"})
                if self.headers.get("Authorization") != f"Bearer {gw.token}":
                    return self.reply(401, {"error": "bad token"})
                if len(raw) > gw.max_body:
                    return self.reply(413, {"error": "too large"})
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                lines = [json.loads(x) for x in raw.decode().split("\n") if x]
                rejected = [{"index": i, "error": "event_id: bad"} for i, x in enumerate(lines) if x["event_id"].startswith("bad")]
                ok = [x for x in lines if not x["event_id"].startswith("bad")]
                if scripted == "full":  # the real gateway's 503: the first half published, the rest to retry
                    half = len(lines) // 2
                    with gw.lock:
                        gw.events.extend(lines[:half])
                    return self.reply(503, {"accepted": half, "rejected": [
                        {"index": i, "error": "not published: the gateway's buffer is full", "retry": True}
                        for i in range(half, len(lines))]}, {"Retry-After": "0.1"})
                with gw.lock:
                    (gw.labels if self.path == "/v1/labels" else gw.events).extend(ok)
                status = 200 if not rejected else (400 if not ok else 207)
                self.reply(status, {"accepted": len(ok), "rejected": rejected})

            def reply(self, status, obj, headers=None):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    g = Gateway()
    yield g
    g.close()


@pytest.mark.parametrize("use_gzip", [True, False])
def test_events_and_labels_posted_as_ndjson(gateway, use_gzip):
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", gzip=use_gzip, batch_size=100)
    for i in range(250):
        p.record("fraud", event_id=f"e-{i}", features={"amount": float(i), "country": "DE"}, score=0.5, latency_ms=1.25)
    p.record_label("fraud", event_id="e-1", label=True)
    p.close()
    assert p.stats() == vigil.Stats(251, 251, 0, 0, 0, 0, 0)
    assert sorted(e["event_id"] for e in gateway.events) == sorted(f"e-{i}" for i in range(250))
    assert gateway.events[0]["features"] == {"amount": 0, "country": "DE"} and gateway.events[0]["latency_ms"] == 1.25
    assert gateway.labels == [{"event_id": "e-1", "model": "fraud", "label": "true", "label_time": gateway.labels[0]["label_time"]}]
    paths = [r[0] for r in gateway.requests]
    assert paths.count("/v1/events") == 3 and paths.count("/v1/labels") == 1
    h = gateway.requests[0][1]
    assert h["Content-Type"] == "application/x-ndjson" and h["Authorization"] == "Bearer s3cret"
    assert (h.get("Content-Encoding") == "gzip") == use_gzip


def test_partial_rejection_is_exact(gateway):
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", batch_size=10)
    for i in range(30):
        p.record("m", event_id=("bad-" if i % 3 == 0 else "ok-") + str(i), score=0.5)
    for i in range(10):
        p.record("m2", event_id=f"bad-all-{i}", score=0.5)  # one body of only bad lines: 400
    with pytest.raises(vigil.LossError) as ei:
        p.flush(timeout=10)
    assert (ei.value.failed, ei.value.reasons) == (20, {"gateway rejected: event_id: bad": 20})
    with pytest.raises(vigil.LossError) as ei:
        p.close()
    assert p.stats() == vigil.Stats(40, 20, 0, 20, 0, 0, 0)
    assert len(gateway.events) == 20


def test_wrong_token_fails_the_batch(gateway):
    p = vigil.Producer(gateway_url=gateway.url, token="nope")
    for i in range(5):
        p.record("m", score=0.5)
    with pytest.raises(vigil.LossError) as ei:
        p.close()
    assert ei.value.failed == 5
    assert list(ei.value.reasons) == ['gateway refused the token (401): {"error": "bad token"}']


def test_busy_gateway_is_retried_after_retry_after(gateway):
    gateway.script = [503, 429, 503]
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret")
    for i in range(7):
        p.record("m", score=0.5)
    t0 = time.monotonic()
    p.flush(timeout=10)
    assert time.monotonic() - t0 >= 0.6  # three Retry-After: 0.2
    p.close()
    assert p.stats().sent == 7 and len(gateway.events) == 7 and len(gateway.requests) == 4


def test_full_gateway_items_marked_retry_are_sent_again_and_only_they(gateway):
    gateway.script = ["full", "full"]
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", batch_size=100)
    for i in range(100):
        p.record("m", event_id=f"e-{i}", score=0.5)
    p.close()
    assert p.stats() == vigil.Stats(100, 100, 0, 0, 0, 0, 0)
    ids = [e["event_id"] for e in gateway.events]
    assert sorted(ids) == sorted(f"e-{i}" for i in range(100)), "each event published exactly once"
    assert [r[0] for r in gateway.requests] == ["/v1/events"] * 3


def test_busy_beyond_delivery_timeout_fails(gateway):
    gateway.script = [503] * 100
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", delivery_timeout=1.0)
    for i in range(4):
        p.record("m", score=0.5)
    with pytest.raises(vigil.LossError) as ei:
        p.close()
    assert (ei.value.failed, ei.value.reasons) == (4, {"gateway busy (503)": 4})


def test_too_large_bodies_are_split(gateway):
    gateway.max_body = 3000
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", gzip=False, batch_size=200)
    for i in range(200):
        p.record("m", event_id=f"e-{i}", features={"pad": "x" * 20}, score=0.5)
    p.close()
    assert p.stats().sent == 200 and len(gateway.events) == 200
    assert any(r[2] > 3000 for r in gateway.requests) and len(gateway.requests) > 8


def test_unreachable_gateway_fails_after_delivery_timeout():
    p = vigil.Producer(gateway_url=f"http://127.0.0.1:{free_port()}", token="t", delivery_timeout=1.0)
    for i in range(3):
        p.record("m", score=0.5)
    p.record_label("m", event_id="x", label=1.5)
    with pytest.raises(vigil.LossError) as ei:
        p.close()
    assert ei.value.failed == 4
    assert all(r.startswith("gateway unreachable") for r in ei.value.reasons)


def test_frame_over_http(gateway):
    import pandas as pd

    p = vigil.Producer(gateway_url=gateway.url, token="s3cret")
    df = pd.DataFrame({"id": ["a", "b"], "s": [0.1, 0.2], "amount": [1.5, None]})
    assert p.record_frame("m", "1", df, score="s", id="id") == 2
    p.close()
    assert [(e["event_id"], e["features"], e["prediction"]) for e in gateway.events] == [
        ("a", {"amount": 1.5}, {"score": 0.1}), ("b", {"amount": None}, {"score": 0.2})]


def test_vectors_over_http(gateway):
    """Vector (embedding) features go as JSON arrays; a vector of another
    length than the first sent for the model, version and feature is
    refused (as the Go SDK does) and counted invalid."""
    np = pytest.importorskip("numpy")
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", batch_size=10)
    p.record("ranker", model_version="1", event_id="v-1", features={"emb": [0.5, -1.0, 2.0]}, score=0.5)
    p.record("ranker", model_version="1", event_id="v-2", features={"emb": np.array([1, 2, 3], dtype=np.float32)}, score=0.5)
    p.record("ranker", model_version="2", event_id="v-3", features={"emb": (1.0, 2.0)}, score=0.5)
    with pytest.raises(vigil.InvalidEventError, match="vector of 2 values, this producer sent vectors of 3"):
        p.record("ranker", model_version="1", event_id="v-4", features={"emb": [1.0, 2.0]}, score=0.5)
    p.close()
    assert p.stats() == vigil.Stats(3, 3, 0, 0, 1, 0, 0)
    got = {e["event_id"]: e["features"]["emb"] for e in gateway.events}
    assert got == {"v-1": [0.5, -1, 2], "v-2": [1, 2, 3], "v-3": [1, 2]}


def test_frame_vectors_over_http(gateway):
    """record_frame with a column of arrays sends JSON arrays, and fixes the
    vector's length for later records of the model version."""
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    p = vigil.Producer(gateway_url=gateway.url, token="s3cret", batch_size=10)
    df = pd.DataFrame({"emb": [np.array([1.0, 2.0]), None, np.array([0.5, -0.5])], "s": [0.1, 0.2, 0.3]})
    assert p.record_frame("ranker", "1", df, score="s") == 3
    with pytest.raises(vigil.InvalidEventError, match="vector of 3 values, this producer sent vectors of 2"):
        p.record("ranker", model_version="1", features={"emb": [1.0, 2.0, 3.0]}, score=0.5)
    p.close()
    embs = [e["features"]["emb"] for e in gateway.events]
    assert len(embs) == 3 and embs.count(None) == 1
    assert sorted(v for v in embs if v is not None) == [[0.5, -0.5], [1, 2]]
