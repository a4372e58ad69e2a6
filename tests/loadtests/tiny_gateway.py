"""A tiny stdlib HTTP server speaking a subset of the gateway contract, for the runner's own tests.

NOT a stand-in for the gateway (the end-to-end test uses the real one): it exists so the Locust runner
can be checked against a server whose every answer is known. Every 10th valid prediction is answered
with probabilities that sum to 1.5 (a wrong answer the load test must count as a failure), and the
server counts what it received, by consumer and status, at GET /counts.

Run: python tiny_gateway.py  -> prints its port on the first line of stdout.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS = {"key-alpha": "alpha", "key-beta": "beta"}
DECLARED = {("alpha", "tiny")}
WIDTH = 3
LOCK = threading.Lock()
COUNTS: Counter[str] = Counter()
STATE = {"valid": 0, "sabotaged": 0}


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "fix": "see the contract"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/readyz":
            self._send(200, {"ready": True})
        elif self.path == "/counts":
            with LOCK:
                self._send(200, {"counts": dict(COUNTS), **STATE})
        else:
            self._send(404, _error("not_found", self.path))

    def _answer(self) -> tuple[str, int, dict]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        auth = self.headers.get("Authorization", "")
        consumer = KEYS.get(auth.removeprefix("Bearer ")) if auth.startswith("Bearer ") else None
        if consumer is None:
            return "-", 401, _error("unauthorized", "no or unknown key")
        if self.headers.get("Content-Type") != "application/json":
            return consumer, 415, _error("unsupported_media_type", "send JSON")
        try:
            body = json.loads(raw)
        except ValueError:
            return consumer, 422, _error("invalid_input", "not JSON")
        if not isinstance(body, dict):
            return consumer, 422, _error("invalid_input", "not an object")
        if (consumer, body.get("model")) not in DECLARED:
            return consumer, 403, _error("forbidden", "undeclared")
        rows = body.get("inputs")
        if (
            not isinstance(rows, list)
            or not rows
            or not all(isinstance(r, list) and len(r) == WIDTH for r in rows)
            or not all(isinstance(v, int | float) for r in rows for v in r)
        ):
            return consumer, 422, _error("invalid_input", "inputs must be rows of 3 numbers")
        with LOCK:
            STATE["valid"] += 1
            sabotage = STATE["valid"] % 10 == 0
            STATE["sabotaged"] += sabotage
        p = 0.75 if sabotage else 0.25
        preds = [{"label": "no", "probabilities": {"no": 0.75, "yes": p}, "warnings": []} for _ in rows]
        meta = {"name": "tiny", "version": 1, "sha256": "ab" * 32}
        return consumer, 200, {"model": meta, "predictions": preds}

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/predict":
            self._send(404, _error("not_found", self.path))
            return
        consumer, status, body = self._answer()
        with LOCK:
            COUNTS[f"{consumer} {status}"] += 1
        self._send(status, body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
