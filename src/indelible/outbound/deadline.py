"""A whole-request deadline for the dispatcher's HTTP client.

httpx's timeouts bound each network operation, not the request: a receiver that trickles its
answer a byte at a time, each byte within the read timeout, holds a sender for ever — past its
lease (so the row is claimed and sent again meanwhile), and past the service's shutdown, which
waits for requests in flight. This network backend gives every read and write only what is
left of the deadline the calling thread set (`within`), so a request ends by then whatever the
receiver does.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpcore
import httpx

_deadline = threading.local()


@contextmanager
def within(seconds: float):
    """Requests made by this thread inside the block end within `seconds` in all."""
    _deadline.at = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.at = None


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    end = getattr(_deadline, "at", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the receiver took longer than the request's whole timeout")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname,
                                             _left(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self):
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _Stream(self._inner.connect_tcp(host, port, _left(timeout, httpcore.ConnectTimeout),
                                               local_address, socket_options))

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _Stream(self._inner.connect_unix_socket(
            path, _left(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """An httpx transport whose requests honour `within`. httpx takes no network backend, so
    it is set on the transport's pool (tests/integration/test_outbox_hostile.py fails if that
    stops working)."""
    made = httpx.HTTPTransport(limits=limits)
    made._pool._network_backend = _Backend()  # noqa: SLF001 - see above
    return made
