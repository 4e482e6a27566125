"""One add-checkpoint request (C2SP tlog-witness) over a kept-alive HTTP connection."""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

from indelible.proofs import AddCheckpoint, format_add_checkpoint


class WitnessUnreachableError(OSError):
    """The witness did not answer (refused, timed out, connection dropped)."""


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: str


class WitnessClient:
    """Not thread-safe: one per feeder thread."""

    def __init__(self, url: str, *, timeout: float = 10.0):
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = (parts.path.rstrip("/") or "") + "/add-checkpoint"
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self._timeout)
        return self._conn

    def add_checkpoint(self, request: AddCheckpoint) -> Reply:
        data = format_add_checkpoint(request).encode("utf-8")
        try:
            return self._post(data)
        except (TimeoutError, ConnectionRefusedError) as e:
            self.close()
            raise WitnessUnreachableError(f"{self._host}:{self._port}: {e}") from e
        except (OSError, http.client.HTTPException):
            self.close()  # a kept-alive connection the witness closed meanwhile: once more
        try:
            return self._post(data)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise WitnessUnreachableError(f"{self._host}:{self._port}: {e}") from e

    def _post(self, data: bytes) -> Reply:
        conn = self._connection()
        conn.request("POST", self._path, body=data,
                     headers={"Content-Type": "text/plain; charset=utf-8"})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        if response.will_close:
            self.close()
        return Reply(response.status, response.getheader("Content-Type", ""), body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
