"""Recompute a tenant's whole log from the stored bytes and check everything against it.

Order of work:
  1. read the head, the stored checkpoints and the stored Merkle nodes (one snapshot);
  2. scan the entries in 2^14-entry chunks, here and in one helper process per further core
     (scan.py): seq continuity, leaf hashes, prev links, indexed columns; each chunk folds its
     256-groups into level-8 hashes;
  3. link the chunks (the prev of each chunk's first entry) and build the tree above level 8;
  4. check every stored checkpoint: signature by the trusted key, origin, root at its size,
     consistency with the previous good one; then stored Merkle nodes and the log head;
  5. check the auditor's own trusted checkpoints: same roots, and consistency up to now.
Nothing read from the database is trusted for the outcome except the entry bytes.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor

import psycopg

from indelible import proofs
from indelible.entry import b64
from indelible.proofs import Checkpoint, NoteVerifier, ProofError
from indelible.store.checkpoints import all_checkpoints
from indelible.store.logs import read_head
from indelible.verifier.report import VerificationReport
from indelible.verifier import scan
from indelible.verifier.scan import GROUP, ChunkResult

CHUNK = 1 << 14  # entries per task; a multiple of GROUP, small enough to share out evenly
# A helper process needs ~0.4 s to start (imports, its connection), about the time this one
# takes to scan 4 default chunks: a smaller log is scanned here alone.
CHUNKS_PER_HELPER = 4
Progress = Callable[[int, int], None]


class InMemoryTree:
    """The recomputed tree: level-8 hashes and above, plus leaves of boundary groups."""

    def __init__(self, level8: list[bytes], groups: dict[int, list[bytes]]):
        self.levels = {8: level8}
        level = 8
        while len(self.levels[level]) > 1:
            below = self.levels[level]
            self.levels[level + 1] = [proofs.node_hash(below[i], below[i + 1])
                                      for i in range(0, len(below) - 1, 2)]
            level += 1
        self.groups = groups

    def subtree(self, level: int, index: int) -> bytes:
        if level >= 8:
            return self.levels[level][index]
        start = index << level
        leaves = self.groups[start // GROUP]
        offset = start % GROUP
        return proofs.fold_perfect(leaves[offset:offset + (1 << level)])

    def root(self, size: int) -> bytes:
        return proofs.tree_root(size, self.subtree)


def verify_log(conninfo: str, tenant: str, verifier: NoteVerifier | Sequence[NoteVerifier], *,
               trusted_notes: Sequence[str] = (), workers: int | None = None,
               progress: Progress | None = None, chunk: int = CHUNK) -> VerificationReport:
    if chunk <= 0 or chunk % GROUP:
        raise ValueError(f"chunk must be a positive multiple of {GROUP}, got {chunk}")
    started = time.monotonic()
    # Several keys when the log's signing key was rotated: each checkpoint is checked with
    # the one it names, and consistency is proved across the change like anywhere else.
    verifier = _Keys(verifier if isinstance(verifier, Sequence) else (verifier,))
    # 1. One snapshot: appends and checkpoints committed meanwhile must not look like
    #    tampering. Workers then scan only seqs below the snapshot's size, which already
    #    existed (entries are never removed by the service), so they see the same log.
    with psycopg.connect(conninfo, autocommit=True) as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        head = read_head(conn, tenant)
        (last_seq,) = conn.execute("SELECT max(seq) FROM ledger_entries WHERE tenant_id = %s",
                                   (tenant,)).fetchone()
        checkpoints = all_checkpoints(conn, tenant)
        nodes = conn.execute("SELECT level, idx, hash FROM merkle_nodes WHERE tenant_id = %s",
                             (tenant,)).fetchall()
    report = VerificationReport(tenant, head.origin, size=head.size)
    trusted = _open_trusted(report, trusted_notes, verifier, head.origin)
    scan_size = max(head.size, (last_seq if last_seq is not None else -1) + 1)
    # Sizes from the signed notes too: a tampered size column must not hide a boundary.
    boundaries = ({c.size for c in checkpoints} | _signed_sizes(checkpoints)
                  | {t.size for t in trusted} | {head.size})
    keep = frozenset(s // GROUP for s in boundaries if s % GROUP and s <= scan_size)
    # 2.
    chunks = _scan(conninfo, tenant, head.origin, scan_size, keep, workers, progress, chunk)
    # 3.
    tree = _link(report, chunks)
    # 4.
    _check_checkpoints(report, tree, checkpoints, verifier, scan_size)
    _check_nodes(report, tree, nodes, head.size)
    _check_head(report, tree, head, chunks, scan_size)
    # 5.
    _check_trusted(report, tree, trusted, head.size, scan_size)
    report.root_hash = _root(tree, head.size)
    report.seconds = time.monotonic() - started
    return report


def _root(tree: InMemoryTree, size: int) -> bytes | None:
    try:
        return tree.root(size) if size else None
    except (KeyError, IndexError):  # entries missing where the root needs them: a finding
        return None


def _signed_sizes(checkpoints) -> set[int]:
    sizes = set()
    for row in checkpoints:
        try:
            sizes.add(proofs.parse_checkpoint_body(row.note.split("\n\n", 1)[0] + "\n").size)
        except ProofError:
            pass  # reported when the checkpoints are checked
    return sizes


def _scan(conninfo, tenant, origin, size, keep, workers, progress, chunk) -> list[ChunkResult]:
    ranges = [(lo, min(lo + chunk, size)) for lo in range(0, size, chunk)]
    helpers = min((workers or os.cpu_count() or 1) - 1, len(ranges) // CHUNKS_PER_HELPER)
    results: dict[int, ChunkResult] = {}

    def record(*finished: ChunkResult) -> None:
        for result in finished:
            results[result.lo] = result
        if progress:
            progress(sum(r.hi - r.lo for r in results.values()), size)

    if helpers <= 0:
        with scan.connect(conninfo) as conn:
            for lo, hi in ranges:
                record(scan.scan_chunk(conn, tenant, origin, lo, hi, keep))
        return [results[lo] for lo, _ in ranges]
    # spawn, not fork: the parent may hold threads and open connections.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(helpers, mp_context=context, initializer=scan.start_helper,
                             initargs=(conninfo,)) as pool:
        futures = [pool.submit(scan.scan_in_helper, tenant, origin, lo, hi, keep)
                   for lo, hi in ranges]
        # This process scans too, from the last chunk backwards, each chunk no helper has
        # taken yet: a spawned helper needs ~0.4 s (imports, its connection) before its
        # first entry, the time to check tens of thousands. Helpers take from the front.
        with scan.connect(conninfo) as conn:
            for future, (lo, hi) in zip(reversed(futures), reversed(ranges)):
                if not future.cancel():
                    break
                record(scan.scan_chunk(conn, tenant, origin, lo, hi, keep),
                       *(f.result() for f in futures if f.done() and not f.cancelled()))
        for future in futures:
            if not future.cancelled():
                record(future.result())
    return [results[lo] for lo, _ in ranges]


def _link(report: VerificationReport, chunks: list[ChunkResult]) -> InMemoryTree:
    level8: list[bytes] = []
    groups: dict[int, list[bytes]] = {}
    previous: bytes | None = None
    for chunk in chunks:
        for check, detail, seq in chunk.findings:
            report.add(check, detail, seq)
        expected = b64(previous) if previous else ""
        if chunk.first_prev is not None and chunk.first_prev != expected:
            report.add("prev", "prev does not link to the previous entry's leaf hash", chunk.lo)
        report.entries_checked += chunk.rows
        level8 += chunk.level8
        groups.update(chunk.groups)
        previous = chunk.last_leaf
    return InMemoryTree(level8, groups)


class _Keys:
    """The trusted verifier keys; a note opens under the first that verifies it."""

    def __init__(self, verifiers: Sequence[NoteVerifier]):
        if not verifiers:
            raise ValueError("at least one verifier key is needed")
        self.verifiers = tuple(verifiers)

    def open(self, note: str, origin: str) -> Checkpoint:
        for verifier in self.verifiers[:-1]:
            try:
                return proofs.open_checkpoint(note, verifier, origin=origin)
            except ProofError:
                continue
        return proofs.open_checkpoint(note, self.verifiers[-1], origin=origin)


def _check_checkpoints(report, tree: InMemoryTree, stored, verifier: _Keys,
                       size: int) -> None:
    good: Checkpoint | None = None
    for row in stored:
        report.checkpoints_checked += 1
        since = good.size if good else 0
        try:
            cp = verifier.open(row.note, report.origin)
        except ProofError as e:
            report.add("checkpoint", f"checkpoint at size {row.size} is not valid under the "
                       f"trusted key: {e}; entries after seq {since - 1} are unproven", since, row.size)
            continue
        if (cp.size, cp.root_hash) != (row.size, row.root_hash):
            report.add("checkpoint", f"checkpoint row size/root columns disagree with its signed "
                       f"note (size {cp.size})", since, cp.size)
        if cp.size > size:
            report.add("checkpoint", f"checkpoint commits to {cp.size} entries but the log holds "
                       f"only {size}", size, cp.size)
        elif tree.root(cp.size) != cp.root_hash:
            report.add("checkpoint", f"the entries do not hash to the root signed at size "
                       f"{cp.size}: something in this range was changed", since, cp.size)
        else:
            if good is not None:
                _consistent(report, tree, good, cp, "checkpoint")
            good = cp
            report.signed_size = max(report.signed_size, cp.size)


def _consistent(report, tree: InMemoryTree, old: Checkpoint, new: Checkpoint, check: str) -> None:
    if old.size == new.size:
        return
    try:
        proof = proofs.consistency_proof(old.size, new.size, tree.subtree)
        proofs.verify_consistency(old.size, new.size, proof, old.root_hash, new.root_hash)
    except ProofError as e:
        report.add(check, f"size {new.size} is not consistent with size {old.size}: {e}",
                   old.size, new.size)


def _check_nodes(report, tree: InMemoryTree, nodes, size: int) -> None:
    stored = {(level, idx): bytes(h) for level, idx, h in nodes}
    for level in range(8, 64, 8):
        expected = size >> level
        if not expected:
            break
        for idx in range(expected):
            have = stored.get((level, idx))
            if have != tree.levels[level][idx]:
                state = "missing" if have is None else "wrong"
                report.add("merkle_node", f"stored Merkle hash level {level} index {idx} is {state}",
                           idx << level, (idx + 1) << level)


def _check_head(report, tree: InMemoryTree, head, chunks: list[ChunkResult], size: int) -> None:
    rows = sum(c.rows for c in chunks)
    if size > head.size:
        report.add("log_head", f"entries exist beyond the log head (head size {head.size}, "
                   f"entries up to seq {size - 1})", head.size, size)
    if head.frontier.size != head.size or (rows == head.size and head.frontier.root() != tree.root(head.size)):
        report.add("log_head", "the log head's Merkle frontier does not match the entries", None)
    last = chunks[-1].last_leaf if chunks else None
    if rows == head.size and head.last_leaf_hash != last:
        report.add("log_head", "the log head's last leaf hash does not match the last entry",
                   head.size - 1 if head.size else None)


def _open_trusted(report, notes: Sequence[str], verifier: _Keys,
                  origin: str) -> list[Checkpoint]:
    trusted = []
    for i, note in enumerate(notes, 1):
        try:
            trusted.append(verifier.open(note, origin))
        except ProofError as e:
            report.add("trusted", f"trusted checkpoint #{i} does not verify: {e}")
    return sorted(trusted, key=lambda c: c.size)


def _check_trusted(report, tree: InMemoryTree, trusted: list[Checkpoint], head_size: int,
                   size: int) -> None:
    agreed = 0  # the largest trusted size the log still agrees with
    for cp in trusted:
        report.trusted_checked += 1
        if cp.size > size:
            report.add("trusted", f"the log holds {size} entries but a trusted checkpoint "
                       f"commits to {cp.size}: entries were removed", min(size, agreed), cp.size)
        elif tree.root(cp.size) != cp.root_hash:
            report.add("trusted", f"the log's first {cp.size} entries are not those the trusted "
                       f"checkpoint signed: rewritten after seq {agreed - 1}", agreed, cp.size)
        else:
            agreed = cp.size
            report.signed_size = max(report.signed_size, cp.size)
            if 0 < cp.size <= head_size <= size:
                current = Checkpoint(report.origin, head_size, tree.root(head_size))
                _consistent(report, tree, cp, current, "trusted")
