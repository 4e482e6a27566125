"""A real webhook receiver on 127.0.0.1 for the outbox tests, as a downstream system would
run one: every request's signature is checked with the `standardwebhooks` reference library
(not with our code), and events are de-duplicated on webhook-id.

How it answers is set while it runs: `answer(status, headers)`, `hang(seconds)` (answers
only after that long), `stop()` / `start()` (down, then back on the same port).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from standardwebhooks import Webhook, WebhookVerificationError

from indelible.runtime import free_port


class Receiver:
    def __init__(self, secret: str, *, port: int | None = None):
        self.port = port or free_port()
        self.verifier = Webhook(secret)
        self.events: dict[str, dict] = {}  # webhook-id -> the event, first time seen
        self.order: list[str] = []  # webhook-ids in the order first seen
        self.duplicates: list[str] = []  # ids seen again (a retry the sender could not know landed)
        self.invalid: list[str] = []  # requests whose signature did not verify
        self.requests = 0
        self._status, self._headers, self._hang = 200, {}, 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, status: int = 200, headers: dict | None = None) -> None:
        self._status, self._headers, self._hang = status, headers or {}, 0.0

    def hang(self, seconds: float) -> None:
        self._hang = seconds

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status, headers = receiver._receive(body, dict(self.headers))
                if receiver._hang:
                    time.sleep(receiver._hang)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _receive(self, body: bytes, headers: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests += 1
            try:
                self.verifier.verify(body, headers)
            except WebhookVerificationError as e:
                self.invalid.append(str(e))
                return 401, {}
            if self._status >= 300:
                return self._status, self._headers  # refused: not taken in
            webhook_id = headers.get("webhook-id") or headers.get("Webhook-Id")
            if webhook_id in self.events:
                self.duplicates.append(webhook_id)
            else:
                self.events[webhook_id] = orjson.loads(body)
                self.order.append(webhook_id)
            return self._status, self._headers

    def of(self, tenant: str) -> dict[str, dict]:
        """The events of one tenant (the suite's tenants share one database and its queue)."""
        return {k: v for k, v in self.events.items() if v["data"].get("tenant") == tenant}

    def duplicates_of(self, tenant: str) -> list[str]:
        return [k for k in self.duplicates if k in self.of(tenant)]

    def wait_for(self, count: int, timeout: float = 60, tenant: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        while len(self.of(tenant) if tenant else self.events) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.events)} of {count} events arrived in "
                                     f"{timeout} s ({self.requests} requests, invalid "
                                     f"{self.invalid})")
            time.sleep(0.05)

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
