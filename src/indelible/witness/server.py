"""The witness over HTTP/1.1 (standard library): `POST /add-checkpoint`, `GET /` for its key.

Connections are kept alive, as the spec asks clients and witnesses to; each is served by a
thread, and requests for one log serialise on that log's state lock (see state.py).
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from indelible.witness.core import TEXT, Answer, Witness

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes: 63 proof lines and a checkpoint with many signatures fit easily
# Seconds a connection may stay silent (between requests, or mid-request) before it is closed:
# each connection holds a thread, so without it any client that reaches the port could pile
# up threads by sending half a request and waiting.
IDLE_TIMEOUT = 10
PATH = "/add-checkpoint"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    # Headers and body leave in two writes; with Nagle on, the body would wait for the
    # client's delayed ACK of the headers (~40 ms) on every kept-alive request.
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT  # socket timeout; http.server closes the connection when it expires
    server: WitnessServer

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != PATH:
            return self._send(Answer(404, f"not found: POST {PATH}\n"))
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()) or len(length) > 19:
            return self._send(Answer(411, "Content-Length required\n"), close=True)
        if int(length) > MAX_BODY:
            return self._send(Answer(413, f"body larger than {MAX_BODY} bytes\n"), close=True)
        raw = self.rfile.read(int(length))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._send(Answer(400, "bad request: body is not UTF-8\n"))
        try:
            answer = self.server.witness.add_checkpoint(text)
        except Exception:  # noqa: BLE001 - a state it cannot trust: refuse, loudly
            log.exception("add-checkpoint failed")
            answer = Answer(500, "the witness could not check this request; see its log\n")
        log.info("add-checkpoint from %s: %d", self.client_address[0], answer.status)
        self._send(answer)

    def do_GET(self) -> None:  # noqa: N802
        if self.path != "/":
            return self._send(Answer(404, "not found\n"))
        self._send(Answer(200, self.server.witness.cosigner.key.key_text() + "\n"))

    def _send(self, answer: Answer, close: bool = False) -> None:
        data = answer.body.encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type or TEXT)
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log.debug("%s " + format, self.client_address[0], *args)


class WitnessServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], witness: Witness):
        super().__init__(address, _Handler)
        self.witness = witness
