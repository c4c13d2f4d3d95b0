"""The Python SDK's hot paths (run by run.sh in the SDK's venv).

record      record() per call, with a 20-feature event: the serving thread's
            cost alone (no batcher thread taking the CPU), and sustained with
            the batcher running and sending to the real Kafka (VIGIL_KAFKA):
            events/s from the first record() to close() with all acknowledged.
frame       record_frame() of the benchmark frame (1M rows x 20 features):
            the caller's time (conversion and validation), and until flush()
            returned with every row encoded (ZSTD Arrow) and acknowledged by
            the real Kafka.
Prints one JSON line per measurement.
"""

import json
import os
import sys
import time
import uuid

import pandas as pd

import vigil


def event_features(i):
    f = {f"num_{j:02d}": float(i % 1000) / 7 + j for j in range(16)}
    f.update(cat_4="DE", cat_20="c7", cat_200="x42", flag=i % 2 == 0)
    return f


def bench_record_alone(chunks=20, per=10_000):
    """The serving thread's cost of record() alone: no batcher thread, and the
    buffer emptied between chunks (as the batcher keeps it in production),
    so that the GC does not scan a growing buffer. Median over chunks."""
    import statistics

    p = vigil.Producer("127.0.0.1:1", "t", max_buffered_events=per + 1)
    p._started = True  # no batcher thread: what the caller pays, nothing else
    out = {"bench": "record_alone"}
    for name, feats in (("us_per_call", event_features(1)), ("us_per_call_4_features",
                        {"amount": 12.5, "country": "DE", "is_new": True, "age": 41.0})):
        segs = {"region": "eu"}
        times = []
        for _ in range(chunks):
            t0 = time.perf_counter()
            for i in range(per):
                p.record("fraud", model_version="3", event_id="req-1", features=feats, score=0.93, label="fraud",
                         latency_ms=4.2, segments=segs)
            times.append((time.perf_counter() - t0) / per * 1e6)
            p._events.clear()
            p._held_events = 0
        out[name] = statistics.median(times)
    return out


def topic(brokers):
    from confluent_kafka.admin import AdminClient, NewTopic

    t = f"vigil-pybench-{uuid.uuid4().hex[:8]}"
    a = AdminClient({"bootstrap.servers": brokers})
    for f in a.create_topics([NewTopic(t, 1, 1), NewTopic(t + ".labels", 1, 1)]).values():
        f.result(30)
    return t, lambda: [f.result(30) for f in a.delete_topics([t, t + ".labels"]).values()]


def bench_record_kafka(brokers, n=200_000):
    t, drop = topic(brokers)
    p = vigil.Producer(brokers, t, full_policy="block", block_timeout=10.0)
    feats = [event_features(i) for i in range(1000)]
    segs = {"region": "eu"}
    t0 = time.perf_counter()
    for i in range(n):
        p.record("fraud", model_version="3", event_id=f"req-{i}", features=feats[i % 1000], score=0.93, label="fraud",
                 latency_ms=4.2, segments=segs)
    t_rec = time.perf_counter() - t0
    p.close(120)
    dt = time.perf_counter() - t0
    drop()
    assert p.stats().sent == n
    return {"bench": "record_kafka", "us_per_call": t_rec / n * 1e6, "events_per_s": n / dt}


def bench_frame(path, brokers):
    df = pd.read_parquet(path)
    n = len(df)
    p = vigil.Producer("127.0.0.1:1", "t", max_buffered_events=10)
    p._started = True
    t0 = time.perf_counter()
    p.record_frame("fraud", "3", df, score="score", id="request_id")
    caller = time.perf_counter() - t0
    out = {"bench": "frame", "rows": n, "columns": 20, "caller_rows_per_s": n / caller}
    if brokers:
        t, drop = topic(brokers)
        p = vigil.Producer(brokers, t)
        t0 = time.perf_counter()
        p.record_frame("fraud", "3", df, score="score", id="request_id")
        p.flush(300)
        out["kafka_rows_per_s"] = n / (time.perf_counter() - t0)
        p.close()
        drop()
    return out


if __name__ == "__main__":
    what, path = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    brokers = os.environ.get("VIGIL_KAFKA")
    if what == "record":
        print(json.dumps(bench_record_alone()))
        if brokers:
            print(json.dumps(bench_record_kafka(brokers)))
    elif what == "frame":
        print(json.dumps(bench_frame(path, brokers)))
