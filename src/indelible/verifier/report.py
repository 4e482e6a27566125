"""What verification found, for people (text) and machines (JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Finding:
    check: str  # seq | leaf_hash | prev | column | merkle_node | log_head | checkpoint | trusted
    #            | domain | read_model | snapshot | evidence | outbox (the models pass)
    detail: str
    seq: int | None = None  # the first entry this finding implicates
    seq_end: int | None = None  # exclusive end when only a range can be named

    def where(self) -> str:
        if self.seq is None:
            return "log"
        if self.seq_end is not None and self.seq_end > self.seq + 1:
            return f"seq {self.seq}..{self.seq_end - 1}"
        return f"seq {self.seq}"


@dataclass
class VerificationReport:
    tenant: str
    origin: str
    size: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    trusted_checked: int = 0
    signed_size: int = 0  # entries a checkpoint that verified (or a trusted one) commits to
    models_checked: bool = False  # the read-model pass ran
    seconds: float = 0.0
    root_hash: bytes | None = None  # the root recomputed from the entries at `size`
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def unsigned(self) -> int:
        """Entries no signature covers: checked for hashes and links, but nothing signed
        commits to them, so whoever holds the database could still rewrite them unseen."""
        return max(0, max(self.size, self.entries_checked) - self.signed_size)

    @property
    def status(self) -> str:
        return "tampered" if self.findings else "unsigned" if self.unsigned else "verified"

    @property
    def first_bad_seq(self) -> int | None:
        """The earliest entry named precisely; else the start of the earliest range.

        Derived structures (Merkle nodes, checkpoint roots) can only name the range of
        entries they cover; a finding about an entry itself is sharper, so it wins.
        """
        precise = [f.seq for f in self.findings if f.seq is not None and f.seq_end is None]
        ranges = [f.seq for f in self.findings if f.seq is not None and f.seq_end is not None]
        return min(precise or ranges) if precise or ranges else None

    def add(self, check: str, detail: str, seq: int | None = None, seq_end: int | None = None):
        self.findings.append(Finding(check, detail, seq, seq_end))

    def to_json(self) -> dict:
        return {
            "tenant": self.tenant, "origin": self.origin, "ok": self.ok, "status": self.status,
            "size": self.size, "signed_size": self.signed_size, "unsigned_entries": self.unsigned,
            "models_checked": self.models_checked,
            "entries_checked": self.entries_checked,
            "checkpoints_checked": self.checkpoints_checked,
            "trusted_checkpoints_checked": self.trusted_checked,
            "first_bad_seq": self.first_bad_seq, "seconds": round(self.seconds, 3),
            "entries_per_second": round(self.entries_checked / self.seconds) if self.seconds else None,
            "findings": [asdict(f) for f in sorted(self.findings, key=_order)],
        }

    def to_text(self) -> str:
        rate = f", {self.entries_checked / self.seconds:,.0f} entries/s" if self.seconds else ""
        head = (f"tenant {self.tenant} ({self.origin}): {self.entries_checked:,} entries, "
                f"{self.checkpoints_checked} checkpoints, {self.trusted_checked} trusted "
                f"checkpoints checked in {self.seconds:.2f}s{rate}")
        if self.ok and not self.unsigned:
            return head + "\nOK: every check holds, and signed checkpoints cover every entry" + self._scope()
        if self.ok:
            covered = (f"the first {self.signed_size:,} entries (seq 0..{self.signed_size - 1})"
                       if self.signed_size else "no entry")
            return "\n".join([head, f"OK: no check failed; signed checkpoints cover {covered}"
                                     + self._scope(),
                               f"UNSIGNED: {self.unsigned:,} entries (seq {self.signed_size}.."
                               f"{self.signed_size + self.unsigned - 1}) are covered by no "
                               "signed checkpoint: NOT verified (sign them: indelible checkpoint)"])
        lines = [head, f"TAMPERED: {len(self.findings)} finding(s); first bad seq: "
                       f"{self.first_bad_seq if self.first_bad_seq is not None else 'n/a'}"]
        lines += [f"  {f.where()}: [{f.check}] {f.detail}" for f in sorted(self.findings, key=_order)]
        return "\n".join(lines)


    def _scope(self) -> str:
        return "" if self.models_checked else " (read models not checked)"


def _order(f: Finding):
    return (f.seq if f.seq is not None else -1, f.check)
