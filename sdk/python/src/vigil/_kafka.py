"""The Kafka transport: librdkafka through confluent-kafka, idempotent.

Runs on the batcher thread: ``send`` encodes a sealed batch into messages
and produces them asynchronously, ``poll`` serves librdkafka's delivery
reports, which count each message's events as sent or failed (with
librdkafka's reason). librdkafka retries within ``delivery.timeout.ms``
(the producer's ``delivery_timeout``); with ``enable.idempotence`` its
retries are not duplicated by the broker, and every message carries the
Go SDK's ``vigil-producer`` / ``vigil-sequence`` headers as well, so the
processor's own check (docs/RELIABILITY.md) holds for it too.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import confluent_kafka
import pyarrow as pa

from . import _wire
from ._frame import batch_events

if TYPE_CHECKING:
    from ._producer import Producer, _FlushRequest, _Sealed

log = logging.getLogger("vigil")

_PURGED = {confluent_kafka.KafkaError._PURGE_QUEUE, confluent_kafka.KafkaError._PURGE_INFLIGHT}


class KafkaTransport:
    def __init__(self, p: "Producer", brokers: str) -> None:
        self.p = p
        acks = p._acks
        conf: Dict[str, Any] = {
            "bootstrap.servers": brokers,
            "client.id": "vigil-python",
            "enable.idempotence": acks in ("all", -1, "-1"),
            "acks": acks,
            # The batcher batches already: send what it produces at once.
            "linger.ms": 1,
            "delivery.timeout.ms": int(p._delivery_timeout * 1000),
            "message.max.bytes": max(1_000_000, p._max_message_bytes + 64 * 1024),
            # FNV-1a of the key (the model), as the Go SDK's kafka-go Hash
            # balancer (which takes the modulo of the hash as a signed int).
            "partitioner": "fnv1a",
            "queue.buffering.max.messages": max(100_000, 2 * p._max_in_flight * p._batch_size),
            "logger": logging.getLogger("vigil.kafka"),
            "error_cb": self._on_error,
        }
        if p.encoding == _wire.ENCODING_JSON and p.compression != "none":
            conf["compression.type"] = p.compression
        conf.update(p._kafka_config)
        self.k = confluent_kafka.Producer(conf)
        self.enc = _wire.ArrowEncoder(p.compression) if p.encoding == _wire.ENCODING_ARROW else None
        self.seq = 0
        self.outstanding: Dict[int, Tuple[int, int]] = {}  # sequence -> (events, batch)
        self.batches: Dict[int, int] = {}  # batch -> messages outstanding
        self.batch_id = 0
        self.flushes: List["_FlushRequest"] = []
        self.errors = 0
        self.headers = [
            (_wire.HEADER_ENCODING, p.encoding.encode()),
            (_wire.HEADER_SCHEMA_VERSION, str(_wire.SCHEMA_VERSION).encode()),
        ]
        self.label_headers = [
            (_wire.HEADER_ENCODING, p.encoding.encode()),
            (_wire.HEADER_SCHEMA_VERSION, str(_wire.LABEL_SCHEMA_VERSION).encode()),
        ]

    def _on_error(self, err: Any) -> None:
        self.errors += 1
        if self.errors & (self.errors - 1) == 0:
            log.warning("vigil: kafka: %s (errors so far %d)", err, self.errors)

    # -- the batcher's interface -----------------------------------------------

    def pending(self) -> bool:
        return bool(self.outstanding)

    def in_flight(self) -> int:
        return len(self.batches)

    def last_sequence(self) -> int:
        return self.seq

    def add_flush(self, req: "_FlushRequest") -> None:
        self.flushes.append(req)
        self._check_flushes()

    def poll(self, timeout: float = 0) -> None:
        self.k.poll(timeout)
        if self.flushes:
            self._check_flushes()

    def _check_flushes(self) -> None:
        lowest = next(iter(self.outstanding), None)
        keep = []
        for r in self.flushes:
            if lowest is None or lowest > r.marker:
                r.done.set()
            else:
                keep.append(r)
        self.flushes = keep

    def drain(self, aborted: Callable[[], bool]) -> bool:
        """Waits until every message is acknowledged or failed; False when
        close's timeout expired first."""
        while self.outstanding:
            if aborted():
                return False
            self.poll(0.05)
        return True

    def abandon(self) -> None:
        self._purge()
        for r in self.flushes:
            r.done.set()
        self.flushes = []

    def close(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.outstanding and time.monotonic() < deadline:
            self.poll(min(0.05, max(0.0, deadline - time.monotonic())))
        self._purge()

    def _purge(self) -> None:
        if self.outstanding:
            self.k.purge(in_queue=True, in_flight=True)
            self.k.poll(0)
        n = sum(e for e, _ in self.outstanding.values())
        if n:
            self.p._resolve(n, "unsent", unsent=True)
        self.outstanding.clear()
        self.batches.clear()
        self.k.flush(0)

    # -- sending ---------------------------------------------------------------

    def send(self, sb: "_Sealed") -> None:
        p = self.p
        labels = sb.kind == "labels"
        topic = p.label_topic if labels else p.topic
        headers = self.label_headers if labels else self.headers
        key = sb.model.encode("utf-8", "surrogatepass")
        msgs: List[Tuple[bytes, int]] = []
        try:
            if labels:
                if self.enc is not None:
                    self._arrow(msgs, key, _wire.labels_record_batch(sb.items), sb.n, "label")
                else:
                    self._json(msgs, key, [_wire.label_json(lb) for lb in sb.items], "label")
            else:
                if self.enc is not None:
                    for batch in _event_batches(sb.items, p._batch_size):
                        self._arrow(msgs, key, batch, batch.num_rows, "event")
                else:
                    self._json(msgs, key, [_wire.event_json(e) for e in _flat_events(sb.items)], "event")
        except Exception as e:  # an encoding bug must not lose the count
            log.exception("vigil: encode %s batch", sb.kind)
            done = sum(n for _, n in msgs)
            p._resolve(sb.n - done, f"encode {sb.kind}: {e}")
            msgs = []
        if not msgs:
            return
        self.batch_id += 1
        bid = self.batch_id
        self.batches[bid] = len(msgs)
        for value, n in msgs:
            self.seq += 1
            seq = self.seq
            h = headers + [(_wire.HEADER_PRODUCER, p._id_bytes), (_wire.HEADER_SEQUENCE, str(seq).encode())]
            self.outstanding[seq] = (n, bid)
            cb = functools.partial(self._delivered, seq)
            while True:
                try:
                    self.k.produce(topic, value=value, key=key, headers=h, on_delivery=cb)
                    break
                except BufferError:  # librdkafka's queue is full: serve reports, retry
                    self.k.poll(0.05)
                    if p._aborted:
                        break
                except confluent_kafka.KafkaException as e:
                    self._delivered(seq, e.args[0] if e.args else e, None)
                    break
            if p._aborted and seq in self.outstanding:
                del self.outstanding[seq]
                self._batch_done(bid)
                p._resolve(n, "unsent", unsent=True)

    def _fits(self, value: bytes, key: bytes) -> bool:
        return len(value) + len(key) + _MESSAGE_OVERHEAD <= self.p._max_message_bytes

    def _json(self, msgs: List[Tuple[bytes, int]], key: bytes, values: List[bytes], what: str) -> None:
        for v in values:
            if self._fits(v, key):
                msgs.append((v, 1))
            else:
                self.p._resolve(1, f"{what} larger than max_message_bytes ({self.p._max_message_bytes})")

    def _arrow(self, msgs: List[Tuple[bytes, int]], key: bytes, batch: pa.RecordBatch, n: int, what: str) -> None:
        assert self.enc is not None
        value = self.enc.encode(batch)
        if self._fits(value, key):
            msgs.append((value, n))
        elif n == 1:
            self.p._resolve(1, f"{what} larger than max_message_bytes ({self.p._max_message_bytes})")
        else:
            half = n // 2
            self._arrow(msgs, key, batch.slice(0, half), half, what)
            self._arrow(msgs, key, batch.slice(half), n - half, what)

    def _delivered(self, seq: int, err: Any, msg: Any) -> None:
        ent = self.outstanding.pop(seq, None)
        if ent is None:
            return
        n, bid = ent
        self._batch_done(bid)
        if err is None:
            self.p._resolve(n, None)
        elif hasattr(err, "code") and err.code() in _PURGED:
            self.p._resolve(n, "unsent", unsent=True)
        else:
            reason = err.str() if hasattr(err, "str") else str(err)
            if self.errors == 0 or n > 0:
                log.error("vigil: kafka refused a message of %d events: %s", n, reason)
            self.p._resolve(n, reason)

    def _batch_done(self, bid: int) -> None:
        left = self.batches.get(bid, 0) - 1
        if left <= 0:
            self.batches.pop(bid, None)
        else:
            self.batches[bid] = left


_MESSAGE_OVERHEAD = 256


def _event_batches(items: List[Any], batch_size: int) -> List[pa.RecordBatch]:
    """Record batches of a model's sealed items: runs of recorded events as
    one batch, frames sliced into batch_size rows."""
    from ._producer import _Frame

    out: List[pa.RecordBatch] = []
    run: List[_wire.Event] = []
    for it in items:
        if isinstance(it, _Frame):
            if run:
                out.append(_wire.events_record_batch(run))
                run = []
            b = it.batch
            for off in range(0, b.num_rows, batch_size):
                out.append(b.slice(off, batch_size))
        else:
            run.append(it)
    if run:
        out.append(_wire.events_record_batch(run))
    return out


def _flat_events(items: List[Any]) -> List[_wire.Event]:
    from ._producer import _Frame

    out: List[_wire.Event] = []
    for it in items:
        if isinstance(it, _Frame):
            out.extend(batch_events(it.batch))
        else:
            out.append(it)
    return out
