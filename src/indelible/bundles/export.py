"""Writing an evidence bundle from the store, streaming (layout: `indelible.proofs.bundle`).

Order of one export:
  1. resolve the query to a seq range or a set of discrepancy streams;
  2. pick the latest checkpoint, which must cover every selected entry; everything read
     after that lies below its size and is append-only, so no snapshot isolation is needed:
     what is bundled cannot change while it is read;
  3. write the zip in sorted name order: README, checkpoints (and tokens), consistency
     proofs, then each entry with its inclusion proof as the rows stream from a server-side
     cursor (nothing holds every entry or proof), then evidence files, snapshots, the key,
     and last the manifest, which lists the SHA-256 of everything before it.
The zip is deterministic: fixed timestamps and modes, sorted names, stored members, no
export time inside; the same query against the same checkpoint gives the same bytes.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

import orjson
import psycopg

from indelible import domain
from indelible.domain import money
from indelible.audit import NotFoundError
from indelible.bundles.readme import readme
from indelible.bundles.reports import report_files
from indelible.bundles.zipwriter import StoredZipWriter
from indelible.proofs import TlogProof, canonical_json, format_tlog_proof, node_hash, range_root
from indelible.proofs import bundle as layout
from indelible.proofs.bundle import amount_totals
from indelible.proofs.compact import TILE_HEIGHT
from indelible.store import discrepancies as cases
from indelible.store import timestamps
from indelible.store.checkpoints import StoredCheckpoint, latest_checkpoint
from indelible.store.logs import read_head
from indelible.store.tree import StoredTree

FETCH = 2_000  # rows per round trip
REPORT_GENERATED = "report.generated"
Progress = Callable[[int, int], None]  # (entries written, entries in the bundle)


class NotYetSignedError(NotFoundError):
    """Selected entries are not covered by a signed checkpoint yet."""


@dataclass(frozen=True)
class BundleQuery:
    """What to export: a seq range, or whole discrepancies (every entry of their streams)."""

    tenant: str
    from_seq: int | None = None
    to_seq: int | None = None
    discrepancies: tuple[str, ...] = ()
    prove_from: tuple[int, ...] = ()  # checkpoint sizes an auditor kept: prove extension

    def __post_init__(self) -> None:
        ranged = self.from_seq is not None or self.to_seq is not None
        if ranged == bool(self.discrepancies):
            raise ValueError("export either a seq range (from, to) or discrepancies, not both")
        if ranged and (self.from_seq is None or self.to_seq is None
                       or not 0 <= self.from_seq <= self.to_seq):
            raise ValueError(f"the range needs 0 <= from <= to; got {self.from_seq}..{self.to_seq}")

    def to_json(self) -> dict:
        if self.discrepancies:
            return {"kind": "discrepancies", "ids": sorted(self.discrepancies)}
        return {"kind": "range", "from_seq": self.from_seq, "to_seq": self.to_seq}


@dataclass(frozen=True)
class BundleSummary:
    manifest_sha256: str
    entries: int
    first_seq: int
    last_seq: int
    checkpoint: StoredCheckpoint
    totals: dict
    files: int
    query: dict

    def to_json(self) -> dict:
        return {"manifest_sha256": self.manifest_sha256, "entries": self.entries,
                "first_seq": self.first_seq, "last_seq": self.last_seq, "files": self.files,
                "checkpoint": {"size": self.checkpoint.size,
                               "root": base64.b64encode(self.checkpoint.root_hash).decode()},
                "totals": self.totals, "query": self.query}


@dataclass
class _Zip:
    # Stored, not deflated: hashes and signatures do not compress, and per-member deflate
    # set-up was most of an export's time (see zipwriter.py).
    out: StoredZipWriter
    subjects: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, data: bytes) -> None:
        self.out.add(name, data)
        self.subjects.append((name, hashlib.sha256(data).hexdigest()))


def write_bundle(conn: psycopg.Connection, query: BundleQuery, out: BinaryIO, *,
                 verifier_key: str, progress: Progress | None = None) -> BundleSummary:
    """Write the bundle of `query` to `out` (a writable binary file) and summarise it."""
    with conn.transaction():  # the entries stream through a server-side cursor
        return _write(conn, query, out, verifier_key, progress)


def _write(conn, query: BundleQuery, out: BinaryIO, verifier_key: str,
           progress: Progress | None) -> BundleSummary:
    tenant = query.tenant
    head = read_head(conn, tenant)
    # 1., 2.
    streams = [cases.stream_of(i) for i in sorted(query.discrepancies)]
    seqs = _selected_seqs(conn, query, streams, head.size)
    main = latest_checkpoint(conn, tenant)
    if main is None or main.size <= seqs[-1]:
        signed = 0 if main is None else main.size
        raise NotYetSignedError(f"entries up to seq {seqs[-1]} of tenant {tenant!r} are not all "
                                f"signed yet (the latest checkpoint covers {signed}); retry after "
                                "the next checkpoint, or run `indelible checkpoint`")
    covering = _covering_checkpoints(conn, tenant, seqs, not streams, main, query.prove_from)
    # 3.
    archive = StoredZipWriter(out)
    z = _Zip(archive)
    z.add(layout.README, readme(head.origin, main.size))
    _write_checkpoints(conn, z, tenant, covering, query.prove_from)
    found = _write_entries(conn, z, query, streams, seqs, main, progress)
    _write_attachments(conn, z, tenant, found)
    z.add(layout.KEY, verifier_key.encode() + b"\n")
    totals = _totals_json(found.totals)
    predicate = {"log": head.origin, "query": query.to_json(),
                 "parameters": {"prove_from": sorted(query.prove_from)},
                 "checkpoint": {"size": main.size, "root": _b64(main.root_hash)},
                 "entries": found.count, "first_seq": seqs[0], "last_seq": seqs[-1],
                 "streams": found.last_versions, "totals": totals,
                 "reports": sorted({str(r.get("report_id")) for r in found.reports})}
    manifest = canonical_json(layout.statement(z.subjects, predicate))
    z.add(layout.MANIFEST, manifest)
    archive.close()  # the central directory: the zip is complete only now
    return BundleSummary(hashlib.sha256(manifest).hexdigest(), found.count, seqs[0], seqs[-1],
                         main, totals, len(z.subjects), query.to_json())


def _write_attachments(conn, z: _Zip, tenant: str, found: _Found) -> None:
    """Evidence files, report files and resolution snapshots the entries brought along. One
    that is missing from the store is left out: the verifier names it."""
    for digest in sorted(found.evidence):
        row = conn.execute("SELECT content FROM evidence_files WHERE tenant_id = %s AND "
                           "sha256 = %s", (tenant, bytes.fromhex(digest))).fetchone()
        if row is not None:
            z.add(f"evidence/{digest}", bytes(row[0]))
    for name, content in sorted(report_files(conn, tenant, found.reports)):
        z.add(name, content)
    for case_id in sorted(found.decided):
        row = conn.execute("SELECT snapshot FROM resolution_snapshots WHERE tenant_id = %s "
                           "AND discrepancy_id = %s", (tenant, case_id)).fetchone()
        if row is not None:
            z.add(f"snapshots/{case_id}.json", bytes(row[0]))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _selected_seqs(conn, query: BundleQuery, streams: list[str], size: int) -> list[int]:
    """The seqs to export: a range is checked against the log; discrepancies must exist."""
    if not streams:
        if query.to_seq >= size:
            raise NotFoundError(f"the range {query.from_seq}..{query.to_seq} goes past the end "
                                f"of tenant {query.tenant!r}'s log (size {size})")
        return [query.from_seq, query.to_seq]  # the ends are all the rest needs
    rows = conn.execute("SELECT stream_id, seq FROM ledger_entries WHERE tenant_id = %s AND "
                        "stream_id = ANY(%s) ORDER BY seq", (query.tenant, streams)).fetchall()
    missing = set(streams) - {s for s, _ in rows}
    if missing:
        ids = ", ".join(sorted(s.removeprefix(cases.PREFIX) for s in missing))
        raise NotFoundError(f"no discrepancy {ids} in tenant {query.tenant!r}")
    return [seq for _, seq in rows]


def _covering_checkpoints(conn, tenant: str, seqs: list[int], ranged: bool,
                          main: StoredCheckpoint, prove_from: tuple[int, ...]) -> list[int]:
    """Sizes of the first checkpoint that covered each selected entry (with its timestamp
    token, it dates the entry), and the main one. `seqs` is a range's two ends, or every
    selected seq."""
    for size in prove_from:
        if not 0 < size <= main.size:
            raise NotFoundError(f"--prove-from {size}: the log's checkpoints go up to size "
                                f"{main.size}")
    sizes = [s for (s,) in conn.execute(
        "SELECT size FROM checkpoints WHERE tenant_id = %s AND size > %s AND size <= %s "
        "ORDER BY size", (tenant, seqs[0], main.size))]
    if ranged:  # the checkpoints whose new entries [previous size, size) meet the range
        lo, hi = seqs
        wanted = {s for i, s in enumerate(sizes) if (sizes[i - 1] if i else lo) <= hi}
    else:
        wanted = {sizes[bisect.bisect_right(sizes, seq)] for seq in seqs}
    return sorted(wanted | {main.size})


def _write_checkpoints(conn, z: _Zip, tenant: str, sizes: list[int],
                       prove_from: tuple[int, ...]) -> None:
    tree = StoredTree(conn, tenant)
    files: dict[str, bytes] = {}
    notes = dict(conn.execute("SELECT size, note FROM checkpoints WHERE tenant_id = %s AND "
                              "size = ANY(%s)", (tenant, sizes)).fetchall())
    tokens = timestamps.tokens(conn, tenant, sizes)
    for size in sizes:
        files[layout.checkpoint_name(size)] = notes[size].encode()
        if size in tokens:
            files[layout.token_name(size)] = tokens[size]
    for a, b in zip(sizes, sizes[1:]):
        files[layout.consistency_name(a, b)] = layout.format_consistency(
            tree.consistency_proof(a, b))
    for size in set(prove_from) - set(sizes):
        later = min(s for s in sizes if s > size)
        files[layout.consistency_name(size, later)] = layout.format_consistency(
            tree.consistency_proof(size, later))
    for name in sorted(files):
        z.add(name, files[name])


@dataclass
class _Found:
    count: int = 0
    evidence: set[str] = field(default_factory=set)
    decided: set[str] = field(default_factory=set)  # discrepancies whose snapshot belongs here
    reports: list[dict] = field(default_factory=list)  # data of report.generated entries
    last_versions: dict[str, int] = field(default_factory=dict)
    first_versions: dict[str, int] = field(default_factory=dict)
    totals: dict = field(default_factory=dict)


def _write_entries(conn, z: _Zip, query: BundleQuery, streams: list[str], seqs: list[int],
                   main: StoredCheckpoint, progress: Progress | None) -> _Found:
    found = _Found()
    total = len(seqs) if streams else seqs[1] - seqs[0] + 1
    subtree = _CachedTree(StoredTree(conn, query.tenant))
    sql = ("SELECT seq, entry FROM ledger_entries WHERE tenant_id = %s AND "
           + ("stream_id = ANY(%s) ORDER BY seq" if streams else
              "seq BETWEEN %s AND %s ORDER BY seq"))
    params = (query.tenant, streams) if streams else (query.tenant, seqs[0], seqs[1])
    totals_docs = []
    with conn.cursor(name="bundle_entries") as cur:
        cur.itersize = FETCH
        cur.execute(sql, params)
        for seq, entry in cur:
            entry = bytes(entry)
            proof = subtree.inclusion_proof(seq, main.size)
            z.add(layout.entry_name(seq), entry)
            z.add(layout.proof_name(seq), format_tlog_proof(TlogProof(
                index=seq, hashes=tuple(proof), checkpoint_note=main.note)).encode())
            _note(found, orjson.loads(entry), totals_docs)
            found.count += 1
            if progress is not None and (found.count % 1000 == 0 or found.count == total):
                progress(found.count, total)
    found.totals = amount_totals(totals_docs)
    return found


def _note(found: _Found, doc: dict, totals_docs: list[dict]) -> None:
    """What one entry brings along: files, a snapshot, its stream's versions, totals."""
    stream, kind = doc["stream"], doc["type"]
    found.first_versions.setdefault(stream, doc["version"])
    found.last_versions[stream] = doc["version"]
    if kind == domain.EventType.EVIDENCE_ATTACHED:
        found.evidence.add(doc["data"]["sha256"])
    elif kind == REPORT_GENERATED:
        found.reports.append(doc["data"])
    elif kind in (domain.EventType.OPENED, domain.EventType.AMENDED):
        totals_docs.append({"type": kind, "stream": stream, "data": doc["data"]})
    if (kind == domain.EventType.TRANSITIONED and doc["data"].get("to") in domain.TERMINAL
            and found.first_versions[stream] == 1):
        found.decided.add(stream.removeprefix(cases.PREFIX))


def _totals_json(totals: dict) -> dict:
    """Sums as decimal strings at the currency's scale (ISO 4217 minor units)."""
    shown = {}
    for currency, t in sorted(totals.items()):
        shown[currency] = {"discrepancies": t["discrepancies"], **{
            k: _amount(t[k], currency) for k in ("expected_amount", "actual_amount",
                                                 "difference")}}
    return shown


def _amount(value: Decimal, currency: str) -> str:
    try:
        return money.format_amount(value, currency)
    except domain.InvalidCommandError:
        return str(value)


class _CachedTree:
    """Inclusion proofs of consecutive entries share most siblings: each subtree and range
    hash is computed once and kept (bounded), so a 100,000-entry export hashes each inner
    node about once instead of once per proof."""

    LIMIT = 1 << 20  # cached hashes before a cache starts over

    def __init__(self, tree: StoredTree):
        self._tree, self._nodes, self._ranges = tree, {}, {}

    def subtree(self, level: int, index: int) -> bytes:
        key = (level, index)
        found = self._nodes.get(key)
        if found is None:
            if level % TILE_HEIGHT == 0:
                found = self._tree.subtree(level, index)
            else:
                found = node_hash(self.subtree(level - 1, 2 * index),
                                  self.subtree(level - 1, 2 * index + 1))
            if len(self._nodes) >= self.LIMIT:
                self._nodes.clear()
            self._nodes[key] = found
        return found

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size]), as `proofs.inclusion_proof` walks it."""
        siblings, lo, hi = [], 0, size
        while hi - lo > 1:
            mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
            if index < mid:
                siblings.append(self._range(mid, hi))
                hi = mid
            else:
                siblings.append(self._range(lo, mid))
                lo = mid
        siblings.reverse()
        return siblings

    def _range(self, lo: int, hi: int) -> bytes:
        found = self._ranges.get((lo, hi))
        if found is None:
            found = range_root(lo, hi, self.subtree)
            if len(self._ranges) >= self.LIMIT:
                self._ranges.clear()
            self._ranges[(lo, hi)] = found
        return found
