"""Fixtures for the real services, found as the Go tests find them
(internal/testenv): VIGIL_KAFKA, VIGIL_CLICKHOUSE. Outside CI a test whose
service is not configured is skipped; in CI (CI set) it fails."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[3]


def require(env: str, script: str) -> str:
    v = os.environ.get(env, "")
    if v:
        return v
    msg = f"{env} is not set: start the service with `{script} start` and `eval $({script} env)`, or run `make test`"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)
    return ""


@pytest.fixture(scope="session")
def kafka() -> str:
    return require("VIGIL_KAFKA", "deployments/local/kafka.sh")


@pytest.fixture(scope="session")
def clickhouse() -> str:
    return require("VIGIL_CLICKHOUSE", "deployments/local/clickhouse.sh")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topics(brokers: str, *topics: str, partitions: int = 2) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    a = AdminClient({"bootstrap.servers": brokers})
    for f in a.create_topics([NewTopic(t, partitions, 1) for t in topics]).values():
        f.result(30)


def delete_topics(brokers: str, *topics: str) -> None:
    from confluent_kafka.admin import AdminClient

    a = AdminClient({"bootstrap.servers": brokers})
    for f in a.delete_topics(list(topics)).values():
        try:
            f.result(30)
        except Exception:
            pass


@pytest.fixture
def topic(kafka: str) -> Iterator[str]:
    t = unique("pysdk")
    create_topics(kafka, t, t + ".labels")
    yield t
    delete_topics(kafka, t, t + ".labels")


def consume_all(brokers: str, topic: str, want: Optional[int] = None, idle: float = 3.0, limit: float = 60.0) -> List[Any]:
    """Every message of topic, from the beginning: until want messages came
    (then a short wait for any extra), or nothing came for idle seconds."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers, "group.id": unique("pysdk-read"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    # Assigned, not subscribed: no group join to wait for.
    parts = c.list_topics(topic, timeout=30).topics[topic].partitions
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    out: List[Any] = []
    end = time.monotonic() + limit
    last = time.monotonic()
    try:
        while time.monotonic() < end:
            m = c.poll(0.5)
            if m is None:
                if want is not None and len(out) >= want and time.monotonic() - last > 1.0:
                    break
                if want is None and out and time.monotonic() - last > idle:
                    break
                continue
            if m.error():
                continue
            out.append(m)
            last = time.monotonic()
    finally:
        c.close()
    return out


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def headers(m: Any) -> Dict[str, bytes]:
    return dict(m.headers() or [])


@pytest.fixture(scope="session")
def vigil_bin(tmp_path_factory) -> Path:
    if shutil.which("go") is None:
        pytest.fail("go is needed to build cmd/vigil for the end-to-end test")
    out = tmp_path_factory.mktemp("bin") / "vigil"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/vigil"], cwd=REPO, check=True, timeout=600)
    return out


