"""The HTTP transport: `vigil gateway` (POST /v1/events, /v1/labels).

For services that cannot reach Kafka. Same Producer, same batching: each
sealed batch of one model becomes one or more NDJSON bodies (one JSON event
or label per line, exactly the Kafka JSON messages), optionally gzipped,
POSTed with ``Authorization: Bearer <token>`` by one sender thread, at most
``max_in_flight`` batches queued.

The gateway answers ``{"accepted": N, "rejected": [{"index": i, "error":
"..."}]}``: 200 all accepted, 207 some rejected, 400 all bad (rejected
lines count as failed, with the gateway's error as the reason); 401/403
(the token) fail the batch; 413 (too large) splits the body in halves;
429 and 503 are retried after ``Retry-After``, and connection errors and
other 5xx with back-off, within ``delivery_timeout``.
"""

from __future__ import annotations

import gzip as gzip_mod
import http.client
import json
import logging
import queue
import random
import threading
import time
import urllib.parse
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

from . import _wire
from ._frame import batch_events

if TYPE_CHECKING:
    from ._producer import Producer, _FlushRequest, _Sealed

log = logging.getLogger("vigil")

_STOP = object()


class _Retry(Exception):
    def __init__(self, reason: str, after: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason, self.after = reason, after


class HttpTransport:
    def __init__(self, p: "Producer", url: str, token: Optional[str], use_gzip: bool) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"vigil.Producer: gateway_url {url!r} (want http://host:port or https://...)")
        self.p = p
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.token = token
        self.gzip = use_gzip
        self.q: "queue.Queue[Any]" = queue.Queue()
        self.lock = threading.Lock()
        self.queued = 0  # batches queued or being sent
        self.seq = 0  # batches handed over
        self.done_seq = 0  # batches resolved (the sender resolves in order)
        self.flushes: List["_FlushRequest"] = []
        self.abort = threading.Event()
        self.conn: Optional[http.client.HTTPConnection] = None
        self.thread = threading.Thread(target=self._run, name="vigil-http-sender", daemon=True)
        self.thread.start()

    # -- the batcher's interface -----------------------------------------------

    def pending(self) -> bool:
        return self.queued > 0

    def in_flight(self) -> int:
        return self.queued

    def last_sequence(self) -> int:
        return self.seq

    def add_flush(self, req: "_FlushRequest") -> None:
        with self.lock:
            self.flushes.append(req)
        self._check_flushes()

    def _check_flushes(self) -> None:
        with self.lock:
            keep = []
            for r in self.flushes:
                if self.done_seq >= r.marker:
                    r.done.set()
                else:
                    keep.append(r)
            self.flushes = keep

    def poll(self, timeout: float = 0) -> None:
        if timeout:
            time.sleep(timeout)
        self._check_flushes()

    def drain(self, aborted: Callable[[], bool]) -> bool:
        while self.queued:
            if aborted():
                return False
            time.sleep(0.01)
        return True

    def abandon(self) -> None:
        self.abort.set()
        with self.lock:
            for r in self.flushes:
                r.done.set()
            self.flushes = []

    def close(self, timeout: float) -> None:
        self.q.put(_STOP)
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.abort.set()
            self.thread.join(5)
        # What the sender never got to is unsent.
        while True:
            try:
                item = self.q.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                self.p._resolve(item[2], "unsent", unsent=True)
        if self.conn is not None:
            self.conn.close()

    def send(self, sb: "_Sealed") -> None:
        if sb.kind == "labels":
            lines = [_wire.label_json(lb) for lb in sb.items]
            path = "/v1/labels"
        else:
            from ._producer import _Frame

            lines = []
            for it in sb.items:
                if isinstance(it, _Frame):
                    lines.extend(_wire.event_json(e) for e in batch_events(it.batch))
                else:
                    lines.append(_wire.event_json(it))
            path = "/v1/events"
        limit = self.p._max_message_bytes
        body: List[bytes] = []
        size = 0
        for line in lines:
            if len(line) + 1 > limit:
                self.p._resolve(1, f"event larger than max_message_bytes ({limit})")
                continue
            if size + len(line) + 1 > limit:
                self._enqueue(path, body)
                body, size = [], 0
            body.append(line)
            size += len(line) + 1
        if body:
            self._enqueue(path, body)

    def _enqueue(self, path: str, lines: List[bytes]) -> None:
        with self.lock:
            self.seq += 1
            self.queued += 1
            seq = self.seq
        self.q.put((path, lines, len(lines), seq))

    # -- the sender thread -------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self.q.get()
            if item is _STOP:
                return
            path, lines, n, seq = item
            try:
                if self.abort.is_set():
                    self.p._resolve(n, "unsent", unsent=True)
                else:
                    self._deliver(path, lines, time.monotonic() + self.p._delivery_timeout)
            except Exception as e:  # a bug must not lose the count
                log.exception("vigil: gateway sender")
                self.p._resolve(n, f"gateway sender: {e}")
            with self.lock:
                self.queued -= 1
                self.done_seq = seq
            self._check_flushes()

    def _deliver(self, path: str, lines: List[bytes], deadline: float) -> None:
        """POSTs lines, retrying within deadline; resolves every line. A
        retry sends only what the gateway did not take: all of it after a
        connection error, a 429 or a 5xx without an answer, and only the
        items it marked ``retry: true`` otherwise (a 503 of a full buffer
        publishes the items before the first refused one)."""
        wait = 0.1
        while lines:
            if self.abort.is_set():
                self.p._resolve(len(lines), "unsent", unsent=True)
                return
            try:
                status, resp, body = self._post(path, b"\n".join(lines) + b"\n")
                lines, reason, after = self._answer(path, lines, status, resp, body, deadline)
                if not lines:
                    return
            except _Retry as r:
                reason, after = r.reason, r.after
            left = deadline - time.monotonic()
            if after is None:
                after = random.uniform(0, wait)
                wait = min(wait * 2, 1.0)
            if after >= left:
                log.error("vigil: gateway: %s; giving up on %d events after delivery_timeout", reason, len(lines))
                self.p._resolve(len(lines), reason)
                return
            log.warning("vigil: gateway: %s; retrying %d events in %.2fs", reason, len(lines), after)
            self.abort.wait(after)

    def _post(self, path: str, data: bytes) -> Tuple[int, Any, bytes]:
        headers = {"Content-Type": "application/x-ndjson", "User-Agent": "vigil-python/0.1"}
        if self.gzip:
            data = gzip_mod.compress(data, 6)
            headers["Content-Encoding"] = "gzip"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once at once
            if self.conn is None:
                cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
                self.conn = cls(self.host, self.port, timeout=min(30.0, self.p._delivery_timeout))
            try:
                self.conn.request("POST", self.base + path, body=data, headers=headers)
                r = self.conn.getresponse()
                body = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r, body
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                self.conn = None
                if attempt == 2 or not isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    raise _Retry(f"gateway unreachable: {e}") from None
        raise AssertionError("unreachable")

    def _answer(self, path: str, lines: List[bytes], status: int, resp: Any, body: bytes,
                deadline: float) -> Tuple[List[bytes], str, Optional[float]]:
        """Counts the gateway's answer; returns the lines to send again, why,
        and after how long (None: back off)."""
        n = len(lines)
        if status in (401, 403):
            self.p._resolve(n, f"gateway refused the token ({status}): {body[:200].decode(errors='replace')}")
            return [], "", None
        if status == 413:
            if n == 1:
                self.p._resolve(1, "gateway: event too large (413)")
                return [], "", None
            half = n // 2
            self._deliver(path, lines[:half], deadline)
            self._deliver(path, lines[half:], deadline)
            return [], "", None
        if status == 429:  # nothing published
            return lines, f"gateway rate limit ({status})", _retry_after(resp.getheader("Retry-After"))
        ans = None
        try:
            ans = json.loads(body) if body else None
        except ValueError:
            pass
        if not isinstance(ans, dict) or "accepted" not in ans:
            if status == 200:
                self.p._resolve(n, None)
                return [], "", None
            if status >= 500:
                if status == 503:
                    return lines, "gateway busy (503)", _retry_after(resp.getheader("Retry-After"))
                return lines, f"gateway error ({status})", None
            self.p._resolve(n, f"gateway: {status} {body[:200].decode(errors='replace')}")
            return [], "", None
        rejected = ans.get("rejected") or []
        accepted = int(ans.get("accepted") or 0)
        if accepted:
            self.p._resolve(accepted, None)
        retry: List[bytes] = []
        reasons: Dict[str, int] = {}
        counted = accepted
        for r in rejected:
            if not isinstance(r, dict):
                continue
            idx = r.get("index")
            err = str(r.get("error", "rejected"))
            if r.get("retry") and isinstance(idx, int) and 0 <= idx < n:
                retry.append(lines[idx])
            elif isinstance(idx, int) and idx < 0:  # the body as a whole
                reasons[f"gateway rejected the request: {err}"] = n - counted
                counted = n
                break
            else:
                key = f"gateway rejected: {err}"
                reasons[key] = reasons.get(key, 0) + 1
            counted += 1
        for reason, c in reasons.items():
            self.p._resolve(c, reason)
        if counted < n:
            self.p._resolve(n - counted, f"gateway {status}: answer counted {counted} of {n} events")
        why = f"gateway busy ({status})"
        return retry, why, _retry_after(resp.getheader("Retry-After")) if retry else None


def _retry_after(v: Optional[str]) -> float:
    if not v:
        return 1.0
    try:
        return max(0.0, float(v))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(v).timestamp() - time.time())
        except (TypeError, ValueError):
            return 1.0
