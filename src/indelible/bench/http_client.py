"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for load generation.

A general-purpose client spends milliseconds of CPU per request under high concurrency,
which on a 2-core machine is CPU taken from the server being measured. This one does the
least a JSON API needs: one connection per simulated client, Content-Length bodies.
"""

from __future__ import annotations

import asyncio

import orjson


class HttpError(RuntimeError):
    pass


class Connection:
    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self._host, self._port = host, port
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self

    async def __aexit__(self, *exc) -> None:
        self._writer.close()
        await self._writer.wait_closed()

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        payload = orjson.dumps(body)
        head = (f"POST {path} HTTP/1.1\r\n{self._fixed}Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n")
        self._writer.write(head.encode() + payload)
        return await self._response()

    async def _response(self) -> tuple[int, dict]:
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                       if line.lower().startswith("content-length:")), None)
        if length is None:
            raise HttpError(f"response without Content-Length: {lines[0]}")
        body = await self._reader.readexactly(length)
        return status, orjson.loads(body) if body else {}
