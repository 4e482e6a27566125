"""Evidence bundles: the file layout, and their offline verification.

A bundle is a zip an auditor checks with nothing but the log's verifier key (and, for
timestamps, the TSA's CA certificates). Names, sorted, with the manifest written last::

    README.md                            how to check it (informative, listed in the manifest)
    checkpoints/<size>.checkpoint        C2SP signed checkpoints: the largest is the one every
                                         entry is proved against; smaller ones are the first
                                         checkpoint that covered each exported entry
    checkpoints/<size>.tsr               RFC 3161 TimeStampResp over that checkpoint's note
    consistency/<a>-<b>.proof            RFC 9162 consistency proof, base64 hashes, one a line
    entries/<seq>.json                   an entry's canonical bytes (seq zero-padded to 12)
    entries/<seq>.tlog-proof             C2SP tlog-proof of that entry against the largest
    evidence/<sha256>                    files attached to exported discrepancies
    reports/<report id>/<name>           reports covering the range (`report.generated`)
    snapshots/<discrepancy id>.json      resolution snapshots, frozen when decided
    verifier-key.txt                     the key the checkpoints are signed with
    manifest.intoto.json                 an in-toto Statement v1: every other file with its
                                         SHA-256, and the query, counts and control totals

Verification (:func:`verify_bundle`), each step naming the file that fails it:
  1. the manifest: every listed file present with its SHA-256, no file unlisted;
  2. the bundled key is one the auditor trusts; every checkpoint's signature verifies;
  3. consistency between consecutive checkpoints, and from each trusted checkpoint;
  4. each entry's inclusion in the largest checkpoint;
  5. the `prev` chain between consecutive seqs, and each stream's versions without a gap;
  6. the manifest's counts and amount totals recomputed from the entries;
  7. snapshots against their entries' history digest; evidence and report files against
     the SHA-256 their entries recorded;
  8. timestamp tokens over their checkpoints (:mod:`.timestamp`, optional dependency).
A bundle is intact only if no step found anything. Unusable input (not a zip, no
checkpoint to check against) raises :class:`BundleError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ._text import b64decode, b64encode
from .bundle_layout import (_CHECKPOINT, _ENTRY, _TOKEN, KEY, MANIFEST, MAX_LISTED,
                            PREDICATE_TYPE, README, SEQ_DIGITS, STATEMENT_TYPE, Archive,
                            BundleError, BundleReport, Finding, _show, amount_totals,
                            checkpoint_name, consistency_name, entry_name, format_consistency,
                            proof_name, statement, token_name)
from .canonical import canonical_json
from .checkpoint import Checkpoint, open_checkpoint
from .errors import ProofError
from .hashing import leaf_hash
from .merkle import verify_consistency, verify_inclusion
from .note import NoteVerifier
from .tlog_proof import parse_tlog_proof

__all__ = [
    "KEY",
    "MANIFEST",
    "PREDICATE_TYPE",
    "README",
    "SEQ_DIGITS",
    "STATEMENT_TYPE",
    "Archive",
    "BundleError",
    "BundleReport",
    "Finding",
    "amount_totals",
    "checkpoint_name",
    "consistency_name",
    "entry_name",
    "format_consistency",
    "proof_name",
    "statement",
    "token_name",
    "verify_bundle",
]

# A verifier of RFC 3161 tokens: (token bytes, the message it must cover) -> the TSA's time,
# raising ProofError when the token does not hold. See timestamp.py.
TokenCheck = Callable[[bytes, bytes], str]
# Renders a resolution snapshot from its stream's (seq, entry bytes, leaf hash) up to the
# deciding entry, exactly as the service froze it (the domain's fold; see auditor.py).
SnapshotRender = Callable[[list[tuple[int, bytes, bytes]]], bytes]


def verify_bundle(archive: Archive, verifiers: Sequence[NoteVerifier], *,
                  trusted_notes: Sequence[tuple[str, str]] = (),
                  check_token: TokenCheck | None = None,
                  render_snapshot: SnapshotRender | None = None) -> BundleReport:
    """Check every claim the bundle makes; ``trusted_notes`` are (label, checkpoint note)
    pairs the auditor kept. Raises :class:`BundleError` if nothing can be checked."""
    if not verifiers:
        raise BundleError("no verifier key given: a bundle's own key proves nothing")
    report = _Run(archive, list(verifiers), report=BundleReport(), render=render_snapshot)
    report.run(trusted_notes, check_token)
    report.report.close()
    return report.report


@dataclass
class _Entry:
    seq: int
    leaf: bytes
    doc: dict


@dataclass
class _Run:
    archive: Archive
    verifiers: list[NoteVerifier]
    report: BundleReport
    subjects: dict[str, str] = field(default_factory=dict)  # name -> sha256 the manifest says
    deferred: set[str] = field(default_factory=set)  # entries/ files: digests checked on reading
    predicate: dict = field(default_factory=dict)
    checkpoints: dict[int, tuple[str, Checkpoint]] = field(default_factory=dict)
    render: SnapshotRender | None = None

    def fail(self, file: str, check: str, problem: str) -> None:
        self.report.fail(file, check, problem)

    def read(self, name: str) -> bytes:
        """A member's bytes; KeyError when it is absent. A member the zip cannot give back
        (damaged) is a finding about that file, and the rest is still checked."""
        try:
            return self.archive.read(name)
        except KeyError:
            raise
        except Exception as e:  # noqa: BLE001 - zip readers raise many kinds
            self.fail(name, "manifest", f"cannot be read from the zip: {type(e).__name__}: {e}")
            return b""

    def run(self, trusted: Sequence[tuple[str, str]], check_token: TokenCheck | None) -> None:
        names = self.archive.namelist()
        if len(set(names)) != len(names):
            self.fail("(archive)", "manifest", "a file name appears twice in the zip")
        for name in sorted(n for n in set(names) if _unsafe(n)):
            self.fail(name, "manifest", "is not a plain relative path (absolute, '..', a "
                      "backslash or a control character): unzipping it could write outside "
                      "the bundle's folder; no bundle names a file so")
        step = self._step
        step("manifest", self._manifest, names)  # 1.
        step("key", self._key)  # 2.
        main = step("checkpoint", self._checkpoints, names)
        step("consistency", self._consistency, main)  # 3.
        step("trusted", self._trusted, main, trusted)
        entries = step("inclusion", self._entries, names, main) or {}  # 4.
        for name in sorted(self.deferred):  # entries/ files step 4 did not read
            self._digest(name, self.read(name))
        step("chain", self._chain, entries)  # 5.
        step("totals", self._totals, entries)  # 6.
        step("snapshot", self._snapshots, names, entries)  # 7.
        step("evidence", self._evidence, names, entries)
        step("report", self._reports, names, entries)
        step("timestamp", self._timestamps, names, check_token)  # 8.

    def _step(self, check: str, method: Callable, *args):
        """Run one step; a manifest or entry of an unexpected shape (a crafted bundle: a
        string where an object belongs, a missing field) fails that step, named, instead of
        crashing the verifier. A bundle that cannot be checked at all still raises."""
        try:
            return method(*args)
        except BundleError:
            raise
        except Exception as e:  # noqa: BLE001 - any shape of garbage is a finding
            self.fail("(bundle)", check, f"cannot be checked, the bundle is malformed: "
                      f"{type(e).__name__}: {e}")
            return None

    # 1. ---------------------------------------------------------------------------------
    def _manifest(self, names: list[str]) -> None:
        present = set(names)
        if MANIFEST not in present:
            self.fail(MANIFEST, "manifest", "missing: nothing says which files belong here")
            return
        try:
            doc = json.loads(self.read(MANIFEST))
            if doc.get("_type") != STATEMENT_TYPE or doc.get("predicateType") != PREDICATE_TYPE:
                raise ValueError(f"not an in-toto Statement v1 of type {PREDICATE_TYPE}")
            subjects = {s["name"]: s["digest"]["sha256"] for s in doc["subject"]}
            self.predicate = doc["predicate"]
            if not isinstance(self.predicate, dict):
                raise ValueError("predicate is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            self.fail(MANIFEST, "manifest", f"unreadable: {e}")
            return
        self.subjects = subjects
        for name in sorted(subjects):
            if name not in present:
                self.fail(name, "manifest", "listed in the manifest but missing from the bundle")
            elif name.startswith("entries/"):
                self.deferred.add(name)  # read once, by step 4, which checks the digest then
            else:
                self._digest(name, self.read(name))
        for name in sorted(present - subjects.keys() - {MANIFEST}):
            if not name.endswith("/"):
                self.fail(name, "manifest", "in the bundle but not listed in the manifest")

    def _digest(self, name: str, data: bytes) -> None:
        """Compare a file's SHA-256 with what the manifest lists for it (if it lists it)."""
        self.deferred.discard(name)
        expected = self.subjects.get(name)
        if expected is None:
            return
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            self.fail(name, "manifest", f"SHA-256 is {actual}, the manifest says {expected}")

    # 2. ---------------------------------------------------------------------------------
    def _key(self) -> None:
        try:
            bundled = self.read(KEY).decode().strip()
        except (KeyError, UnicodeDecodeError):
            self.fail(KEY, "key", "missing or not text")
            return
        if bundled not in {v.key_text() for v in self.verifiers}:
            self.fail(KEY, "key", "is not the verifier key you passed with --vkey: the "
                      "bundle's own key proves nothing; checkpoints are checked with yours")

    def _open(self, note: str) -> Checkpoint:
        errors = []
        for verifier in self.verifiers:
            try:
                return open_checkpoint(note, verifier, origin=self.predicate.get("log") or None)
            except ProofError as e:
                errors.append(str(e))
        raise ProofError("; ".join(errors))

    def _checkpoints(self, names: list[str]) -> Checkpoint:
        for name in sorted(names):
            m = _CHECKPOINT.match(name)
            if not m:
                continue
            try:
                note = self.read(name).decode()
                cp = self._open(note)
            except (ProofError, UnicodeDecodeError) as e:
                self.fail(name, "checkpoint", f"does not verify with your key: {e}")
                continue
            if cp.size != int(m.group(1)):
                self.fail(name, "checkpoint", f"is a checkpoint of size {cp.size}, not of the "
                          "size its name says")
                continue
            self.checkpoints[cp.size] = (note, cp)
        claimed = self.predicate.get("checkpoint", {}).get("size") if self.predicate else None
        if not self.checkpoints:
            if claimed is None:
                raise BundleError("the bundle holds no checkpoint that verifies with your key, "
                                  "so nothing in it can be checked")
            self.fail(checkpoint_name(claimed), "checkpoint", "the checkpoint every entry is "
                      "proved against is missing or does not verify")
            return None
        main = self.checkpoints[max(self.checkpoints)][1]
        if claimed is not None and claimed != main.size:
            self.fail(checkpoint_name(claimed), "checkpoint", f"the manifest names the "
                      f"checkpoint of size {claimed}, but the largest one that verifies is "
                      f"of size {main.size}")
        self.report.checkpoint = main
        return main

    # 3. ---------------------------------------------------------------------------------
    def _consistency_proof(self, size1: int, size2: int) -> list[bytes] | None:
        name = consistency_name(size1, size2)
        try:
            text = self.read(name).decode()
            return [b64decode(line, name, "hash") for line in text.splitlines()]
        except KeyError:
            return None
        except (UnicodeDecodeError, ProofError) as e:
            self.fail(name, "consistency", f"unreadable: {e}")
            return []

    def _consistency(self, main: Checkpoint | None) -> None:
        sizes = sorted(self.checkpoints)
        for a, b in zip(sizes, sizes[1:]):
            proof = self._consistency_proof(a, b)
            name = consistency_name(a, b)
            if proof is None:
                self.fail(name, "consistency", f"missing: nothing proves the checkpoint of size "
                          f"{b} extends the one of size {a}")
                continue
            try:
                verify_consistency(a, b, proof, self.checkpoints[a][1].root_hash,
                                   self.checkpoints[b][1].root_hash)
            except ProofError as e:
                self.fail(name, "consistency", f"does not prove size {b} extends size {a}: {e}")

    def _trusted(self, main: Checkpoint | None, trusted: Sequence[tuple[str, str]]) -> None:
        for label, note in trusted:
            try:
                cp = self._open(note)
            except ProofError as e:
                self.fail(label, "trusted", f"your trusted checkpoint does not verify: {e}")
                continue
            if main is None:
                continue
            if cp.origin != main.origin:
                self.fail(label, "trusted", f"your checkpoint is of the log {cp.origin!r}, the "
                          f"bundle's of {main.origin!r}: it says nothing about this bundle")
                continue
            if cp.size in self.checkpoints:
                if self.checkpoints[cp.size][1].root_hash != cp.root_hash:
                    self.fail(label, "trusted", f"the bundle's checkpoint of size {cp.size} has "
                              "another root than yours: two histories were signed")
                continue
            if cp.size > main.size:
                self.fail(label, "trusted", f"your checkpoint (size {cp.size}) is newer than "
                          f"the bundle's (size {main.size}); export again to prove it")
                continue
            later = min(s for s in self.checkpoints if s > cp.size)
            proof = self._consistency_proof(cp.size, later)
            if proof is None:
                self.fail(label, "trusted", f"the bundle has no consistency proof from size "
                          f"{cp.size}; export it with --prove-from {cp.size}")
                continue
            try:
                verify_consistency(cp.size, later, proof, cp.root_hash,
                                   self.checkpoints[later][1].root_hash)
                self.report.notes.append(f"{label}: the bundle's checkpoint extends your "
                                         f"checkpoint of size {cp.size}")
            except ProofError as e:
                self.fail(label, "trusted", f"the bundle's log does not extend your checkpoint "
                          f"of size {cp.size}: {e}")

    # 4. ---------------------------------------------------------------------------------
    def _entries(self, names: list[str], main: Checkpoint | None) -> dict[int, _Entry]:
        entries: dict[int, _Entry] = {}
        main_note = self.checkpoints[main.size][0] if main else None
        for name in sorted(names):
            m = _ENTRY.match(name)
            if not m:
                continue
            seq, data = int(m.group(1)), self.read(name)
            self._digest(name, data)
            try:
                doc = json.loads(data)
                if not isinstance(doc, dict) or doc.get("seq") != seq:
                    raise ValueError(f"its seq is {doc.get('seq') if isinstance(doc, dict) else '?'}"
                                     f", not {seq}")
            except ValueError as e:
                self.fail(name, "inclusion", f"not an entry of this bundle: {e}")
                continue
            leaf = leaf_hash(data)
            entries[seq] = _Entry(seq, leaf, _kept(doc))
            if main is not None:
                self._inclusion(name, seq, leaf, main, main_note)
        self.report.entries = len(entries)
        return entries

    def _inclusion(self, name: str, seq: int, leaf: bytes, main: Checkpoint,
                   main_note: str) -> None:
        pname = proof_name(seq)
        try:
            raw = self.read(pname)
            self._digest(pname, raw)
            proof = parse_tlog_proof(raw.decode())
        except KeyError:
            self.fail(pname, "inclusion", f"missing: nothing proves {name} is in the log")
            return
        except (UnicodeDecodeError, ProofError) as e:
            self.fail(pname, "inclusion", f"unreadable: {e}")
            return
        if proof.checkpoint_note != main_note:
            self.fail(pname, "inclusion", f"is not against the bundle's checkpoint "
                      f"(size {main.size})")
            return
        if proof.index != seq:
            self.fail(pname, "inclusion", f"proves index {proof.index}, not seq {seq}")
            return
        try:
            verify_inclusion(seq, main.size, leaf, proof.hashes, main.root_hash)
        except ProofError as e:
            self.fail(name, "inclusion", f"is not the entry the log holds at seq {seq} "
                      f"(checked with {pname}): {e}")

    # 5. ---------------------------------------------------------------------------------
    def _chain(self, entries: dict[int, _Entry]) -> None:
        seqs = sorted(entries)
        for a, b in zip(seqs, seqs[1:]):
            if b == a + 1 and entries[b].doc.get("prev") != b64encode(entries[a].leaf):
                self.fail(entry_name(b), "chain", f"its prev is not the leaf hash of seq {a}")
        query = self.predicate.get("query", {}) if self.predicate else {}
        if query.get("kind") == "range" and seqs:
            self._range(entries, query["from_seq"], query["to_seq"])
        streams: dict[str, list[_Entry]] = {}
        for seq in seqs:
            streams.setdefault(str(entries[seq].doc.get("stream")), []).append(entries[seq])
        whole = query.get("kind") == "discrepancies"
        for stream, items in streams.items():
            versions = [e.doc.get("version") for e in items]
            first = 1 if whole else versions[0]
            for e, want in zip(items, range(first, first + len(items))):
                if e.doc.get("version") != want:
                    self.fail(entry_name(e.seq), "chain", f"stream {stream}: this entry is "
                              f"version {e.doc.get('version')}, but version {want} comes before "
                              f"it and is not in the bundle: an entry was dropped")
                    break
        expected_streams = self.predicate.get("streams", {}) if self.predicate else {}
        for stream, last in sorted(expected_streams.items()):
            got = streams.get(stream, [])
            if not got or got[-1].doc.get("version") != last:
                have = got[-1].doc.get("version") if got else "none"
                self.fail(MANIFEST, "chain", f"stream {stream}: the manifest says its last "
                          f"exported version is {last}, the bundle ends at {have}")

    def _range(self, entries: dict[int, _Entry], low: int, high: int) -> None:
        """Each seq of the exported range is in the bundle. The range comes from the
        (unsigned) manifest, so it is walked, never materialised: a claimed range of 10**12
        seqs costs as much as the entries the bundle holds."""
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise TypeError(f"the exported range {low!r}..{high!r} is not two integers")
        missing = max(0, high - low + 1) - sum(1 for s in entries if low <= s <= high)
        if missing > MAX_LISTED:  # first, so the count is listed whatever follows
            self.fail(MANIFEST, "chain", f"{missing:,} seqs of the exported range "
                      f"{low}..{high} are missing; the first are named")
        listed, seq = 0, low
        while listed < min(missing, MAX_LISTED) and seq <= high:
            if seq not in entries:
                listed += 1
                self.fail(entry_name(seq), "chain", f"seq {seq} of the exported range "
                          f"{low}..{high} is missing: an entry was dropped")
            seq += 1

    # 6. ---------------------------------------------------------------------------------
    def _totals(self, entries: dict[int, _Entry]) -> None:
        if not self.predicate:
            return
        if self.predicate.get("entries") != len(entries):
            self.fail(MANIFEST, "totals", f"the manifest counts {self.predicate.get('entries')} "
                      f"entries, the bundle holds {len(entries)}")
        try:
            claimed = {c: {k: Decimal(v) for k, v in t.items() if k != "discrepancies"}
                       | {"discrepancies": t.get("discrepancies")}
                       for c, t in self.predicate.get("totals", {}).items()}
        except (InvalidOperation, AttributeError, TypeError) as e:
            self.fail(MANIFEST, "totals", f"unreadable totals: {e}")
            return
        actual = amount_totals(e.doc for _, e in sorted(entries.items()))
        for currency in sorted(claimed.keys() | actual.keys()):
            if claimed.get(currency) != actual.get(currency):
                self.fail(MANIFEST, "totals", f"{currency}: the manifest's control totals "
                          f"{_show(claimed.get(currency))} differ from the entries' "
                          f"{_show(actual.get(currency))}")

    # 7. ---------------------------------------------------------------------------------
    def _snapshots(self, names: list[str], entries: dict[int, _Entry]) -> None:
        by_stream: dict[str, list[_Entry]] = {}
        for seq in sorted(entries):
            by_stream.setdefault(str(entries[seq].doc.get("stream")), []).append(entries[seq])
        for name in sorted(n for n in names if n.startswith("snapshots/")):
            problem = _snapshot_problem(name, self.read(name), by_stream, self.render, self.read)
            if problem:
                self.fail(name, "snapshot", problem)

    def _evidence(self, names: list[str], entries: dict[int, _Entry]) -> None:
        present = set(names)
        for seq in sorted(entries):
            doc = entries[seq].doc
            if doc.get("type") != "discrepancy.evidence_attached":
                continue
            digest, size = doc["data"].get("sha256"), doc["data"].get("size")
            name = f"evidence/{digest}"
            if name not in present:
                self.fail(name, "evidence", f"attached at seq {seq} but not in the bundle")
                continue
            content = self.read(name)
            actual = hashlib.sha256(content).hexdigest()
            if actual != digest or len(content) != size:
                self.fail(name, "evidence", f"hashes to {actual} ({len(content)} bytes), but "
                          f"the entry at seq {seq} recorded {digest} ({size} bytes)")

    def _reports(self, names: list[str], entries: dict[int, _Entry]) -> None:
        present = set(names)
        for seq in sorted(entries):
            doc = entries[seq].doc
            if doc.get("type") != "report.generated":
                continue
            data = doc.get("data", {})
            report_id = data.get("report_id") or data.get("id")
            for f in data.get("files", []):
                name = f"reports/{report_id}/{f.get('name')}"
                if name not in present:
                    self.report.notes.append(f"{name}: generated at seq {seq}, not in the bundle")
                    continue
                actual = hashlib.sha256(self.read(name)).hexdigest()
                if actual != f.get("sha256"):
                    self.fail(name, "report", f"hashes to {actual}, the entry at seq {seq} "
                              f"recorded {f.get('sha256')}")

    # 8. ---------------------------------------------------------------------------------
    def _timestamps(self, names: list[str], check_token: TokenCheck | None) -> None:
        tokens = sorted(n for n in names if _TOKEN.match(n))
        if tokens and check_token is None:
            self.report.notes.append(f"{len(tokens)} timestamp token(s) not checked: pass the "
                                     "TSA's CA certificates (--tsa-ca) and install rfc3161-client")
            return
        for name in tokens:
            size = int(_TOKEN.match(name).group(1))
            if size not in self.checkpoints:
                self.fail(name, "timestamp", f"no verified checkpoint of size {size} to cover")
                continue
            try:
                when = check_token(self.read(name), self.checkpoints[size][0].encode())
            except ProofError as e:
                self.fail(name, "timestamp", f"does not hold: {e}")
                continue
            self.report.timestamps[size] = when


# Entry types whose data a later step reads; other entries keep only their chain fields, so
# a 100,000-entry bundle is checked without holding 100,000 parsed documents.
_DATA_READ = frozenset({"discrepancy.opened", "discrepancy.amended", "discrepancy.transitioned",
                        "discrepancy.evidence_attached", "report.generated"})


def _unsafe(name: str) -> bool:
    parts = name.split("/")
    return (name.startswith("/") or "\\" in name or ".." in parts or
            any(ord(c) < 32 for c in name) or (len(name) > 1 and name[1] == ":"))


def _kept(doc: dict) -> dict:
    kept = {k: doc.get(k) for k in ("prev", "stream", "version", "type")}
    if doc.get("type") in _DATA_READ:
        kept["data"] = doc.get("data")
    return kept


def _snapshot_problem(name: str, data: bytes, by_stream: dict[str, list[_Entry]],
                      render: SnapshotRender | None, read: Callable[[str], bytes]) -> str | None:
    """Why a snapshot does not match the entries it froze; None when it does. Its history
    digest is SHA-256 of the canonical JSON list of [seq, base64 leaf hash] of its stream's
    entries up to the deciding one, so it is recomputed from proved entries."""
    try:
        doc = json.loads(data)
        case, history = doc["discrepancy"], doc["history"]
        stream = f"disc/{case['id']}"
    except (ValueError, KeyError, TypeError) as e:
        return f"unreadable: {e}"
    if name != f"snapshots/{case['id']}.json":
        return f"is the snapshot of discrepancy {case['id']}, not of the one its name says"
    items = [e for e in by_stream.get(stream, []) if e.seq <= history.get("last_seq", -1)]
    if not items:
        return f"none of the entries it froze ({stream}) is in the bundle"
    listed = [[e.seq, b64encode(e.leaf)] for e in items]
    digest = hashlib.sha256(canonical_json(listed)).hexdigest()
    if digest != history.get("digest_sha256") or len(listed) != history.get("entries"):
        return (f"its history digest does not match the {len(listed)} entries of {stream} up to "
                f"seq {history.get('last_seq')}: the snapshot is not what the ledger decided")
    last = items[-1].doc
    if last.get("type") != "discrepancy.transitioned" or \
            last.get("data", {}).get("to") != case.get("status"):
        return f"its status {case.get('status')!r} is not the one the deciding entry records"
    if render is not None:
        try:
            expected = render([(e.seq, read(entry_name(e.seq)), e.leaf) for e in items])
        except Exception as e:  # noqa: BLE001 - entries the domain refuses are a finding
            return f"its entries cannot be replayed: {type(e).__name__}: {e}"
        if expected != data:
            return ("is not the discrepancy as its entries decide it (replayed through the "
                    "lifecycle's fold)")
    return None
