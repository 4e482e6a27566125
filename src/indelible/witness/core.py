"""The add-checkpoint decision of C2SP tlog-witness, independent of HTTP.

Order of checks (each failure answers at once, nothing is recorded):
  1. the body parses (old size, proof lines, blank line, checkpoint note) — else 400;
  2. the checkpoint's origin belongs to a log this witness serves — else 404;
  3. a signature on it verifies under that log's key (others are ignored) — else 403;
  4. the old size is not above the checkpoint's size — else 400;
  5. under the per-origin lock: the old size is the size last cosigned (0 if none) — else
     409 with that size; for an equal size, the roots match — else 409; otherwise the
     consistency proof from the recorded root verifies — else 422;
  6. record the checkpoint (durably), then answer 200 with the cosignature line.

A log is served for the origins its key name covers: the name itself and `<name>/...`
(Indelible signs every tenant's log, `<base origin>/<tenant>`, with one key named after the
base origin).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from indelible.proofs import (
    Checkpoint,
    Cosigner,
    NoteVerifier,
    ProofError,
    open_note,
    parse_add_checkpoint,
    parse_checkpoint_body,
    verify_consistency,
)
from indelible.proofs.cosignature import split_note
from indelible.proofs.tlog_witness import SIZE_MEDIA_TYPE
from indelible.witness.state import WitnessState

TEXT = "text/plain; charset=utf-8"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = TEXT


class Witness:
    def __init__(self, *, cosigner: Cosigner, logs: Sequence[NoteVerifier], state: WitnessState,
                 clock: Callable[[], float] = time.time):
        if not logs:
            raise ValueError("a witness needs at least one log key (--log)")
        self.cosigner = cosigner
        self._logs = tuple(logs)
        self._state = state
        self._clock = clock

    def _keys_for(self, origin: str) -> list[NoteVerifier]:
        return [k for k in self._logs if origin == k.name or origin.startswith(k.name + "/")]

    def add_checkpoint(self, text: str) -> Answer:
        # 1.
        try:
            request = parse_add_checkpoint(text)
            body, _ = split_note(request.note)
            checkpoint = parse_checkpoint_body(body)
        except ProofError as e:
            return Answer(400, f"bad request: {e}\n")
        # 2.
        keys = self._keys_for(checkpoint.origin)
        if not keys:
            return Answer(404, f"unknown log: origin {checkpoint.origin!r}\n")
        # 3.
        if not any(_opens(request.note, key) for key in keys):
            return Answer(403, f"no signature from a trusted key of {checkpoint.origin!r}\n")
        # 4.
        if request.old_size > checkpoint.size:
            return Answer(400, f"old size {request.old_size} is larger than the checkpoint "
                          f"size {checkpoint.size}\n")
        if request.old_size == 0 and request.proof:
            return Answer(400, "a consistency proof from old size 0 must be empty\n")
        # 5., 6.
        with self._state.hold(checkpoint.origin):
            return self._check_and_record(checkpoint, body, request.old_size, request.proof)

    def _check_and_record(self, checkpoint: Checkpoint, body: str, old: int,
                          proof: tuple[bytes, ...]) -> Answer:
        latest = self._state.get(checkpoint.origin)
        size = latest.size if latest else 0
        if old != size:
            return Answer(409, f"{size}\n", SIZE_MEDIA_TYPE)
        if latest is not None and old == checkpoint.size:
            if latest.root_hash != checkpoint.root_hash:
                _misbehaviour(checkpoint, body, "another root at the size already cosigned")
                return Answer(409, f"{size}\n", SIZE_MEDIA_TYPE)
        elif latest is not None and old > 0:
            try:
                verify_consistency(old, checkpoint.size, proof, latest.root_hash,
                                   checkpoint.root_hash)
            except ProofError as e:
                _misbehaviour(checkpoint, body, f"no consistency with size {old}: {e}")
                return Answer(422, f"consistency proof from size {old} does not verify: {e}\n")
        self._state.put(checkpoint)
        return Answer(200, self.cosigner.cosign(body, int(self._clock())))


def _misbehaviour(checkpoint: Checkpoint, body: str, why: str) -> None:
    """A validly signed checkpoint that contradicts what was cosigned: possible evidence of
    a split view, kept in the witness's log (the spec allows logging it, never cosigning)."""
    log.warning("refused a signed checkpoint of %s at size %d (%s): %r", checkpoint.origin,
                checkpoint.size, why, body)


def _opens(note: str, key: NoteVerifier) -> bool:
    try:
        open_note(note, key)
    except ProofError:
        return False
    return True
