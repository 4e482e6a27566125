"""Asking a TSA for a token over a checkpoint's signed note, and checking it before keeping it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from indelible.proofs import ProofError
from indelible.proofs.timestamp import MEDIA_QUERY, MEDIA_REPLY, TimestampChecker, timestamp_request


class TsaError(Exception):
    """The TSA did not give a token that holds (down, refusing, or a reply that fails checks)."""


@dataclass(frozen=True)
class TsaClient:
    url: str
    checker: TimestampChecker  # the TSA's CA certificates, from the operator
    timeout: float = 10.0  # seconds

    def stamp(self, message: bytes) -> tuple[bytes, datetime]:
        """The TSA's reply (DER TimeStampResp) over SHA-256(message) and the time it vouches
        for; checked against the CA certificates and the request's nonce first, so a token
        that would not verify is never stored."""
        request, nonce = timestamp_request(message)
        try:
            response = httpx.post(self.url, content=request, timeout=self.timeout,
                                  headers={"Content-Type": MEDIA_QUERY, "Accept": MEDIA_REPLY})
        except httpx.HTTPError as e:
            raise TsaError(f"TSA {self.url} did not answer: {e!r}") from e
        if response.status_code != 200:
            raise TsaError(f"TSA {self.url} answered HTTP {response.status_code}")
        token = response.content
        try:
            when = self.checker(token, message, nonce=nonce)
        except ProofError as e:
            raise TsaError(f"TSA {self.url} sent a token that does not hold: {e}") from e
        return token, datetime.fromisoformat(when.replace("Z", "+00:00"))
