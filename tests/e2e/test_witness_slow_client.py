"""A client that sends half a request and waits must not hold a witness thread for ever."""

from __future__ import annotations

import socket
import time

from indelible.proofs import AddCheckpoint, format_add_checkpoint
from indelible.witness.server import IDLE_TIMEOUT

from .cli_helpers import cli_env
from .test_witness_cli import LOG, _note
from .witness_helpers import make_witness


def test_a_stalled_request_is_closed_and_the_witness_still_answers(tmp_path):
    witness = make_witness(tmp_path, "audit.example/w", cli_env(tmp_path / "data", None),
                           LOG.verifier_key_text()).start()
    try:
        stalled = socket.create_connection(("127.0.0.1", witness.port))
        stalled.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\n"
                        b"Content-Length: 60000\r\n\r\nold 0\n")
        stalled.settimeout(IDLE_TIMEOUT + 15)
        started = time.monotonic()
        try:
            closed = stalled.recv(1) == b""  # the server hangs up without an answer
        except TimeoutError:
            closed = False
        finally:
            stalled.close()
        assert closed, f"the half-sent request still held its connection after " \
                       f"{time.monotonic() - started:.0f} s"
        note = _note(1)
        answer = witness.add_checkpoint(format_add_checkpoint(AddCheckpoint(0, (), note)))
        assert answer.status_code == 200

        digits = socket.create_connection(("127.0.0.1", witness.port))
        digits.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: "
                       + b"9" * 5000 + b"\r\n\r\n")
        digits.settimeout(10)
        assert digits.recv(64).startswith(b"HTTP/1.1 411")  # not a traceback and a reset
        digits.close()
    finally:
        witness.stop()
