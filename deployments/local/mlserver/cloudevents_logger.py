"""An inference logger for any Open Inference Protocol server, in the manner of
KServe's InferenceLogger (the agent sidecar, kserve pkg/logger): a reverse proxy
that forwards each request to the model server and, after answering, posts the
request and the response to a CloudEvents sink in HTTP binary mode.

    python cloudevents_logger.py --listen 127.0.0.1:8090 --upstream http://127.0.0.1:8080 \
        --sink http://127.0.0.1:8088/v1/cloudevents [--namespace default] [--component predictor]

Per proxied POST it sends two events with the same ce-id (the request's Ce-Id
header, else a fresh UUID): ce-type org.kubeflow.serving.inference.request with
the request body and ce-time when it arrived, then, only when the server answered
200, org.kubeflow.serving.inference.response with the response body and ce-time
when the answer came; with ce-source (the upstream URL), ce-specversion 1.0 and
the extensions inferenceservicename (the {model} of /v2/models/{model}/...),
namespace, component and endpoint ("default"). Events are posted by one worker
thread in order; a failed post is logged to stderr, never retried (as KServe's).
Standard library only: it runs in MLServer's virtualenv or any Python 3.9+.
"""

import argparse
import datetime
import http.server
import queue
import re
import sys
import threading
import urllib.error
import urllib.request
import uuid

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?/infer$")


def rfc3339(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--sink", required=True)
    ap.add_argument("--namespace", default="default")
    ap.add_argument("--component", default="predictor")
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    events: "queue.Queue" = queue.Queue(maxsize=10000)

    def deliver() -> None:
        while True:
            ev = events.get()
            if ev is None:
                return
            headers, body = ev
            req = urllib.request.Request(a.sink, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
            except (urllib.error.URLError, OSError) as e:
                print(f"cloudevents_logger: post {headers['Ce-Type']} {headers['Ce-Id']}: {e}", file=sys.stderr, flush=True)

    def event(kind: str, ce_id: str, model: str, at: datetime.datetime, content_type: str, body: bytes) -> None:
        headers = {
            "Ce-Specversion": "1.0",
            "Ce-Id": ce_id,
            "Ce-Type": "org.kubeflow.serving.inference." + kind,
            "Ce-Source": a.upstream,
            "Ce-Time": rfc3339(at),
            "Ce-Inferenceservicename": model,
            "Ce-Namespace": a.namespace,
            "Ce-Component": a.component,
            "Ce-Endpoint": "default",
            "Content-Type": content_type or "application/json",
        }
        try:
            events.put_nowait((headers, body))
        except queue.Full:
            print(f"cloudevents_logger: queue full, dropped {kind} {ce_id}", file=sys.stderr, flush=True)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args) -> None:  # quiet
            pass

        def _forward(self, method: str) -> None:
            arrived = datetime.datetime.now(datetime.timezone.utc)
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            ce_id = self.headers.get("Ce-Id") or str(uuid.uuid4())
            content_type = self.headers.get("Content-Type", "")
            m = MODEL_PATH.match(self.path)
            if m and body is not None:
                event("request", ce_id, m.group(1), arrived, content_type, body)
            req = urllib.request.Request(a.upstream + self.path, data=body, method=method)
            for k in ("Content-Type", "Accept"):
                if self.headers.get(k):
                    req.add_header(k, self.headers[k])
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    status, payload, rtype = resp.status, resp.read(), resp.headers.get("Content-Type", "application/json")
            except urllib.error.HTTPError as e:
                status, payload, rtype = e.code, e.read(), e.headers.get("Content-Type", "application/json")
            self.send_response(status)
            self.send_header("Content-Type", rtype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            if m and body is not None and status == 200:
                event("response", ce_id, m.group(1), datetime.datetime.now(datetime.timezone.utc), content_type, payload)

        def do_POST(self) -> None:
            self._forward("POST")

        def do_GET(self) -> None:
            self._forward("GET")

    worker = threading.Thread(target=deliver, daemon=True)
    worker.start()
    srv = http.server.ThreadingHTTPServer((host, int(port)), Proxy)
    print(f"cloudevents_logger: listening on {a.listen}, upstream {a.upstream}, sink {a.sink}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
