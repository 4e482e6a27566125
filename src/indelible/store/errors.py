"""Errors of the storage layer.

    StoreError
    ├── UnknownLogError          the tenant has no log
    ├── StoreUnavailableError    the database could not be reached or failed mid-batch
    │   └── CommitOutcomeUnknownError  the connection failed during COMMIT: written or not
    ├── LogIntegrityError        stored state contradicts itself (refuse to sign over it)
    └── AppendRefusedError       one command refused; its batch-mates are unaffected
        ├── VersionConflictError       expected stream version does not match
        ├── IdempotencyConflictError   a key reused for a different command
        └── InvalidEntryError          the command cannot be encoded as an entry
"""

from __future__ import annotations


class StoreError(Exception):
    pass


class UnknownLogError(StoreError):
    def __init__(self, tenant: str):
        super().__init__(f"tenant {tenant!r} has no ledger log (create it first)")
        self.tenant = tenant


class StoreUnavailableError(StoreError):
    pass


class CommitOutcomeUnknownError(StoreUnavailableError):
    """Retrying with the same idempotency keys is safe: it replays what did commit."""


class LogIntegrityError(StoreError):
    pass


class AppendRefusedError(StoreError):
    pass


class VersionConflictError(AppendRefusedError):
    def __init__(self, stream: str, expected: int, actual: int):
        super().__init__(f"stream {stream!r} is at version {actual}, the command expected {expected}")
        self.stream, self.expected, self.actual = stream, expected, actual


class IdempotencyConflictError(AppendRefusedError):
    """A key reused for a different command; `seq` and `stream` name the entry it produced."""

    def __init__(self, key: str, seq: int, stream: str):
        super().__init__(f"idempotency key {key!r} was already used for a different command: "
                         f"it produced the entry at seq {seq} (stream {stream!r})")
        self.key, self.seq, self.stream = key, seq, stream


class InvalidEntryError(AppendRefusedError):
    pass
