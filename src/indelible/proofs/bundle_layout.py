"""Evidence bundles: what a bundle holds and how its files are named (the format), and the
report a verification gives. Verification itself is in :mod:`.bundle`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

from ._text import b64encode
from .checkpoint import Checkpoint
from .errors import ProofError

MANIFEST = "manifest.intoto.json"
README = "README.md"
KEY = "verifier-key.txt"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:indelible:evidence-bundle:v1"
SEQ_DIGITS = 12
MAX_LISTED = 20  # findings listed per check; the rest are counted

_CHECKPOINT = re.compile(r"^checkpoints/(0|[1-9][0-9]*)\.checkpoint$")
_TOKEN = re.compile(r"^checkpoints/(0|[1-9][0-9]*)\.tsr$")
_CONSISTENCY = re.compile(r"^consistency/([1-9][0-9]*)-([1-9][0-9]*)\.proof$")
_ENTRY = re.compile(r"^entries/([0-9]{%d,})\.json$" % SEQ_DIGITS)


class BundleError(ProofError):
    """The bundle cannot be checked at all (as opposed to: checked, and found wrong)."""


def checkpoint_name(size: int) -> str:
    return f"checkpoints/{size}.checkpoint"


def token_name(size: int) -> str:
    return f"checkpoints/{size}.tsr"


def consistency_name(size1: int, size2: int) -> str:
    return f"consistency/{size1}-{size2}.proof"


def entry_name(seq: int) -> str:
    return f"entries/{seq:0{SEQ_DIGITS}d}.json"


def proof_name(seq: int) -> str:
    return f"entries/{seq:0{SEQ_DIGITS}d}.tlog-proof"


def format_consistency(hashes: Iterable[bytes]) -> bytes:
    return "".join(b64encode(h) + "\n" for h in hashes).encode()


def statement(subjects: Iterable[tuple[str, str]], predicate: dict) -> dict:
    """The manifest: an in-toto Statement v1 whose subjects are (name, sha256 hex)."""
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": n, "digest": {"sha256": d}} for n, d in sorted(subjects)],
            "predicateType": PREDICATE_TYPE, "predicate": predicate}


class Archive(Protocol):
    """What the verifier reads: a zipfile.ZipFile, or anything with the same two methods."""

    def namelist(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class Finding:
    file: str  # the file in the bundle that failed (or the manifest, for a missing one)
    check: str  # manifest, key, checkpoint, consistency, trusted, inclusion, chain, totals,
    #             snapshot, evidence, report, timestamp
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class BundleReport:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was checked, and what could not be
    entries: int = 0
    checkpoint: Checkpoint | None = None
    timestamps: dict[int, str] = field(default_factory=dict)  # checkpoint size -> TSA time
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.findings and not self._counts

    def fail(self, file: str, check: str, problem: str) -> None:
        count = self._counts.get(check, 0) + 1
        self._counts[check] = count
        if count <= MAX_LISTED:
            self.findings.append(Finding(file, check, problem))

    def close(self) -> None:
        for check, count in sorted(self._counts.items()):
            if count > MAX_LISTED:
                self.findings.append(Finding("(more)", check, f"... and {count - MAX_LISTED:,} "
                                             f"more {check} findings not listed"))

    def to_text(self) -> str:
        lines = [f"FAILED {f}" for f in self.findings] + [f"note: {n}" for n in self.notes]
        cp = self.checkpoint
        where = f" in {cp.origin} at size {cp.size}" if cp else ""
        lines.append(f"{'INTACT' if self.intact else 'NOT INTACT'}: {self.entries:,} entries"
                     f"{where}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        cp = self.checkpoint
        return {"status": "intact" if self.intact else "not_intact", "entries": self.entries,
                "checkpoint": None if cp is None else {"origin": cp.origin, "size": cp.size,
                                                       "root": b64encode(cp.root_hash)},
                "timestamps": {str(k): v for k, v in sorted(self.timestamps.items())},
                "findings": [{"file": f.file, "check": f.check, "problem": f.problem}
                             for f in self.findings], "notes": self.notes}


# A verifier of RFC 3161 tokens: (token bytes, the message it must cover) -> the TSA's time,
# raising ProofError when the token does not hold. See timestamp.py.
def _show(totals: dict | None) -> str:
    if totals is None:
        return "(none)"
    return ", ".join(f"{k} {v}" for k, v in sorted(totals.items()))


def amount_totals(docs: Iterable[dict]) -> dict[str, dict]:
    """Control totals by currency over the discrepancies the entries open: how many, and the
    sums of their expected and actual amounts and differences as last amended. Decimal, so
    the comparison with the manifest's strings is exact whatever their scale."""
    latest: dict[str, dict] = {}
    for doc in docs:
        data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
        if doc.get("type") == "discrepancy.opened":
            latest[str(doc.get("stream"))] = data
        elif doc.get("type") == "discrepancy.amended" and str(doc.get("stream")) in latest:
            latest[str(doc.get("stream"))] = data.get("after", {})
    totals: dict[str, dict] = {}
    for data in latest.values():
        try:
            t = totals.setdefault(data["currency"], {"discrepancies": 0,
                                                     "expected_amount": Decimal(0),
                                                     "actual_amount": Decimal(0),
                                                     "difference": Decimal(0)})
            t["discrepancies"] += 1
            for k in ("expected_amount", "actual_amount", "difference"):
                t[k] += Decimal(data[k])
        except (KeyError, InvalidOperation, TypeError):
            continue
    return totals
