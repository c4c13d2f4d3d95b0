"""End to end: this SDK -> the real Kafka -> a real `vigil process` (built
from this repository) -> ClickHouse: exact counts, means and category
counts per window, and labels joined to the stored events, for both
encodings and for record_frame."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import vigil
from conftest import REPO, create_topics, delete_topics, unique

BASE = datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
WINDOWS = 3
PER_WINDOW = 120


def ch_http(addr: str) -> str:
    host = addr.rsplit(":", 1)[0]
    return os.environ.get("VIGIL_CLICKHOUSE_HTTP", f"http://{host}:8123")


def query(url: str, sql: str):
    req = urllib.request.Request(url + "/?" + urllib.parse.urlencode({"query": sql + " FORMAT JSONEachRow"}))
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line]
    except urllib.error.HTTPError as e:
        raise AssertionError(f"ClickHouse: {e.read().decode()[:500]}\n{sql}") from None


def test_python_producer_to_clickhouse(kafka, clickhouse, vigil_bin, tmp_path):
    topic, group, db = unique("pysdk-e2e"), unique("pysdk-e2e"), "pysdk_e2e_" + unique("x").split("-")[1]
    create_topics(kafka, topic, topic + ".labels", partitions=4)
    url = ch_http(clickhouse)
    log = open(tmp_path / "process.log", "w")
    proc = subprocess.Popen(
        [str(vigil_bin), "process", "--kafka", kafka, "--topic", topic, "--group", group, "--label-group", group + "-labels",
         "--clickhouse", clickhouse, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h",
         "--checkpoint-interval", "200ms"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, VIGIL_LOG_FORMAT="json"),
    )
    try:
        rng = np.random.default_rng(12)
        expect = defaultdict(lambda: {"n": 0, "sum": 0.0, "cats": defaultdict(int), "missing": 0})
        label_ids = {}

        def expect_row(model, t, amount, country):
            w = int((t - BASE).total_seconds() // 60)
            e = expect[(model, w)]
            e["n"] += 1
            if amount is None:
                e["missing"] += 1
            else:
                e["sum"] += amount
            e["cats"][country] += 1

        arrow_p = vigil.Producer(kafka, topic, batch_size=50, linger=0.02)
        json_p = vigil.Producer(kafka, topic, encoding="json", linger=0.02)
        for i in range(WINDOWS * PER_WINDOW):
            t = BASE + timedelta(seconds=60 * i / PER_WINDOW)
            for model, p in (("py-arrow", arrow_p), ("py-json", json_p)):
                amount = None if i % 10 == 3 else round(float(rng.gamma(2.0, 30.0)), 3)
                country = ["DE", "FR", "US"][int(rng.integers(0, 3))]
                eid = f"{model}-{i}"
                p.record(model, event_id=eid, model_version="1", event_time=t, score=float(rng.random()),
                         features={"amount": amount, "country": country}, latency_ms=2.5)
                expect_row(model, t, amount, country)
                if i % 4 == 0:
                    label_ids[(model, eid)] = 1
                    p.record_label(model, event_id=eid, label=i % 8 == 0, label_time=t + timedelta(minutes=5))

        n = WINDOWS * PER_WINDOW
        times = [BASE + timedelta(seconds=60 * i / PER_WINDOW) for i in range(n)]
        amounts = rng.gamma(2.0, 30.0, n).round(3)
        amounts[::10] = np.nan  # missing
        df = pd.DataFrame({
            "request_id": [f"py-frame-{i}" for i in range(n)],
            "ts": pd.to_datetime(times, utc=True),
            "amount": amounts,
            "country": pd.Categorical(rng.choice(["DE", "FR", "US"], n)),
            "proba": rng.random(n),
        })
        frame_p = vigil.Producer(kafka, topic, batch_size=100)
        assert frame_p.record_frame("py-frame", "1", df, score="proba", id="request_id", event_time="ts") == n
        for i in range(n):
            a = None if np.isnan(amounts[i]) else float(amounts[i])
            expect_row("py-frame", times[i], a, df["country"][i])
        for p in (arrow_p, json_p, frame_p):
            p.close()

        want_events = {m: sum(e["n"] for (mm, _), e in expect.items() if mm == m) for m in ("py-arrow", "py-json", "py-frame")}
        deadline = time.monotonic() + 120
        got = {}
        while time.monotonic() < deadline:
            try:
                got = {r["model"]: int(r["n"]) for r in query(url, f"SELECT model, sum(events) AS n FROM {db}.vigil_model_windows FINAL WHERE segment = '' GROUP BY model")}
                labels = int(query(url, f"SELECT count() AS n FROM {db}.vigil_labels")[0]["n"])
            except Exception:
                got, labels = {}, 0
            if got == want_events and labels == len(label_ids):
                break
            time.sleep(0.5)
        assert got == want_events, open(tmp_path / "process.log").read()[-3000:]

        rows = query(url, f"""
            SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, toUInt64(sum(count)) AS n,
                   toUInt64(sum(missing)) AS missing, sum(sum) AS s
            FROM {db}.vigil_feature_windows FINAL
            WHERE feature = 'amount' AND segment = '' GROUP BY model, ws""")
        assert len(rows) == len(expect)
        for r in rows:
            e = expect[(r["model"], int((int(r["ws"]) - int(BASE.timestamp())) // 60))]
            assert (int(r["n"]), int(r["missing"])) == (e["n"] - e["missing"], e["missing"]), r
            assert abs(float(r["s"]) / int(r["n"]) - e["sum"] / (e["n"] - e["missing"])) < 1e-9, r
        cats = query(url, f"""
            SELECT model, toInt64(toUnixTimestamp(window_start)) AS ws, cat, toUInt64(sum(k)) AS n
            FROM (SELECT * FROM {db}.vigil_feature_windows FINAL WHERE feature = 'country' AND segment = '')
            ARRAY JOIN categories AS cat, category_counts AS k GROUP BY model, ws, cat""")
        got_cats = defaultdict(dict)
        for r in cats:
            got_cats[(r["model"], int((int(r["ws"]) - int(BASE.timestamp())) // 60))][r["cat"]] = int(r["n"])
        assert got_cats == {k: dict(e["cats"]) for k, e in expect.items()}

        joined = query(url, f"""
            SELECT l.model AS model, count() AS n, sum(found) AS found FROM (SELECT model, event_id FROM {db}.vigil_labels) AS l
            ANY LEFT JOIN (SELECT model, event_id, toUInt8(1) AS found FROM {db}.vigil_events) AS e USING (model, event_id)
            GROUP BY model ORDER BY model""")
        want_labels = {m: sum(1 for (mm, _) in label_ids if mm == m) for m in ("py-arrow", "py-json")}
        assert {r["model"]: (int(r["n"]), int(r["found"])) for r in joined} == {m: (c, c) for m, c in want_labels.items()}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        try:
            query(url, f"DROP DATABASE IF EXISTS {db}")
        except Exception:
            pass
        delete_topics(kafka, topic, topic + ".labels")


def test_embedding_drift_end_to_end(kafka, clickhouse, vigil_bin, tmp_path):
    """Vector features from this SDK (numpy arrays; Arrow fixed_size_list and
    JSON arrays) -> Kafka -> `vigil process` -> its drift job's rows in
    vigil_drift: Evidently 0.7's numbers for the same vectors
    (testdata/embedding/evidently.json), drifted in the shifted window only."""
    topic, group, db = unique("pysdk-emb"), unique("pysdk-emb"), "pysdk_emb_" + unique("x").split("-")[1]
    create_topics(kafka, topic, topic + ".labels", partitions=2)
    url = ch_http(clickhouse)
    ev = json.loads((REPO / "testdata" / "embedding" / "evidently.json").read_text())
    subprocess.run([str(vigil_bin), "reference", "build", "--clickhouse", clickhouse, "--clickhouse-database", db,
                    "--model", "ranker", "--version", "1", str(REPO / "testdata" / "embedding" / "reference.jsonl")],
                   check=True, capture_output=True, timeout=120)
    log = open(tmp_path / "process.log", "w")
    proc = subprocess.Popen(
        [str(vigil_bin), "process", "--kafka", kafka, "--topic", topic, "--group", group, "--label-group", group + "-labels",
         "--clickhouse", clickhouse, "--clickhouse-database", db, "--window", "1m", "--allowed-lateness", "1h",
         "--checkpoint-interval", "200ms", "--drift-interval", "1s", "--http-addr", "off",
         # the drift job looks back to BASE, whenever the test runs
         "--drift-lookback", f"{int((datetime.now(timezone.utc) - BASE).total_seconds() // 3600) + 24}h"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, VIGIL_LOG_FORMAT="json"),
    )
    try:
        names = ["unshifted", "shifted"]
        for w, name in enumerate(names):
            p = vigil.Producer(kafka, topic, encoding="json" if w else "arrow", batch_size=64, linger=0.02)
            vecs = ev["windows"][name]["vectors"]
            for i, v in enumerate(vecs):
                p.record("ranker", model_version="1", event_id=f"{name}-{i}", score=0.5, features={"emb": np.array(v)},
                         event_time=BASE + timedelta(seconds=60 * w + 60 * i / len(vecs)))
            p.close()
        deadline = time.monotonic() + 120
        rows = []
        while time.monotonic() < deadline:
            try:
                rows = query(url, f"""
                    SELECT toInt64(toUnixTimestamp(window_start)) AS ws, feature, method, score, drifted, n_cur
                    FROM {db}.vigil_drift FINAL WHERE model = 'ranker' AND kind = 'vector' AND segment = ''
                    ORDER BY ws, feature""")
            except AssertionError:
                rows = []
            if len(rows) == 6 and all(int(r["n_cur"]) == 400 for r in rows):
                break
            time.sleep(0.5)
        assert len(rows) == 6, (rows, open(tmp_path / "process.log").read()[-3000:])
        for r in rows:
            want = ev["windows"][names[(int(r["ws"]) - int(BASE.timestamp())) // 60]][r["method"]]
            assert r["feature"] == "emb@" + r["method"]
            assert abs(float(r["score"]) - want["score"]) <= 1e-12, (r, want)
            assert bool(int(r["drifted"])) == want["drifted"], (r, want)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        try:
            query(url, f"DROP DATABASE IF EXISTS {db}")
        except Exception:
            pass
        delete_topics(kafka, topic, topic + ".labels", topic + ".dlq")
