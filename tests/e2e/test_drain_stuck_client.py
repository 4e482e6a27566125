"""SIGTERM drains `indelible up` even when a client never finishes its request.

A client sends the headers of a POST and part of its body, then nothing: uvicorn waits for
requests in flight before shutting down, and without a limit it waited for this one
forever, so the service never drained (the appender, the verifier and the embedded servers
were never stopped).
"""

from __future__ import annotations

import signal
import socket
import subprocess

from .cli_helpers import cli_env
from .test_http import _start


def test_sigterm_does_not_wait_forever_for_a_stuck_request(tmp_path, owner_url):
    env = {**cli_env(tmp_path / "data", owner_url), "INDELIBLE_INGEST_ENABLED": "false"}
    service, base = _start(env, tmp_path / "service.log")
    port = int(base.rsplit(":", 1)[1])
    stuck = socket.create_connection(("127.0.0.1", port))
    try:
        stuck.sendall(b"POST /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: 1000\r\n\r\nkey=")
        service.send_signal(signal.SIGTERM)
        try:
            code = service.wait(60)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, (tmp_path / "service.log").read_text()[-2000:]
    finally:
        stuck.close()
        service.kill()
        service.wait(30)
