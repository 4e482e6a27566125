"""The offline bundle check, runnable without the service's dependencies.

    python -m indelible.auditor verify-bundle FILE.zip --vkey KEY [--tsa-ca PEM]
        [--trusted-checkpoint FILE ...] [--json]

This module imports only the standard library and `indelible.proofs` (which needs
`cryptography`, and `rfc3161-client` for timestamp tokens), so an auditor can install the
`indelible` package with `--no-deps` and those two. `indelible verify-bundle` runs the same
function. Exit 0 intact, 1 not intact (each file named with what failed), 2 unusable.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

from indelible.proofs import NoteVerifier, ProofError
from indelible.proofs.bundle import BundleError, verify_bundle

EXIT_INTACT, EXIT_NOT_INTACT, EXIT_UNUSABLE = 0, 1, 2


def _text(value: str) -> str:
    """Key text given inline, or a file that holds it."""
    path = Path(value)
    return path.read_text().strip() if path.is_file() else value.strip()


def check_bundle(path: str, vkeys: list[str], *, trusted: list[str] = (), tsa_ca: list[str] = (),
                 as_json: bool = False, out=sys.stdout, err=sys.stderr) -> int:
    """Verify the bundle at `path`, print the report, return the exit code."""
    try:
        verifiers = [NoteVerifier.from_key_text(_text(v)) for v in vkeys]
        notes = [(t, Path(t).read_text()) for t in trusted]
        check_token = None
        if tsa_ca:
            from indelible.proofs.timestamp import load_checker

            check_token = load_checker([Path(p).read_bytes() for p in tsa_ca])
        with BundleReader(path) as archive:
            report = verify_bundle(archive, verifiers, trusted_notes=notes,
                                   check_token=check_token, render_snapshot=render_snapshot)
    except (OSError, zipfile.BadZipFile, ValueError, BundleError, ProofError) as e:
        print(f"error: the bundle could not be checked: {e}", file=err)
        return EXIT_UNUSABLE
    except Exception as e:  # noqa: BLE001 - a zip crafted to break zipfile is unusable, not a crash
        print(f"error: the bundle could not be checked: {type(e).__name__}: {e}", file=err)
        return EXIT_UNUSABLE
    print(json.dumps(report.to_json(), indent=2) if as_json else report.to_text(), file=out)
    return EXIT_INTACT if report.intact else EXIT_NOT_INTACT


class BundleReader:
    """The zip's members by name, read straight from their offsets when stored (as bundles
    are), without zipfile's per-member set-up. The zip's CRC-32 is not what decides: every
    file's SHA-256 is checked against the manifest, so a changed byte is named as a finding
    about that file (exit 1) instead of failing the whole read (which zipfile's CRC check
    would turn into "unusable")."""

    # A compressed member is inflated only up to this size: bundles are written stored, and
    # the largest member Indelible writes (an evidence file) is far smaller, so a member that
    # claims more is a zip bomb, not evidence (2 MB of deflate inflates to 2 GiB).
    MAX_INFLATED = 256 * 1024 * 1024

    def __init__(self, path: str):
        self._zip = zipfile.ZipFile(path)
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._infos = {i.filename: i for i in self._zip.infolist()}

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()
        self._zip.close()

    def namelist(self) -> list[str]:
        return self._zip.namelist()

    def read(self, name: str) -> bytes:
        info = self._infos[name]  # KeyError for a missing member, as zipfile raises
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            if info.file_size > self.MAX_INFLATED:
                raise zipfile.LargeZipFile(f"{name}: a compressed member that inflates to "
                                           f"{info.file_size:,} bytes (more than "
                                           f"{self.MAX_INFLATED:,}): refused as a zip bomb")
            try:
                return self._zip.read(name)
            except zipfile.BadZipFile:  # a CRC mismatch: let the SHA-256 check name it
                with self._zip.open(name) as member:
                    member._expected_crc = None  # noqa: SLF001 - read the bytes as stored
                    return member.read()
        self._file.seek(info.header_offset)
        header = self._file.read(30)
        if header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{name}: no local header where the directory says")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._file.seek(info.header_offset + 30 + name_length + extra_length)
        # No more than the archive holds: a size the directory merely claims allocates nothing.
        return self._file.read(max(0, min(info.file_size, self._size - self._file.tell())))


def render_snapshot(rows: list[tuple[int, bytes, bytes]]) -> bytes:
    """A resolution snapshot as the service freezes it (store/discrepancies.py), from its
    stream's entries: `indelible.domain` is pure and needs only the standard library."""
    from indelible import domain
    from indelible.proofs import canonical_json

    state, history = None, []
    for seq, entry, leaf in rows:
        doc = json.loads(entry)
        state = domain.evolve(state, domain.Event(doc["type"], doc["data"]), at=doc["at"])
        history.append([seq, base64.b64encode(leaf).decode()])
    digest = hashlib.sha256(canonical_json(history)).digest()
    return canonical_json({"discrepancy": state.to_dict(), "history": {
        "entries": len(history), "first_seq": history[0][0], "last_seq": history[-1][0],
        "digest_sha256": digest.hex(),
        "digest_rule": "SHA-256 of the canonical JSON list of [seq, base64 leaf hash]"}})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m indelible.auditor")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify-bundle", help="check an evidence bundle offline")
    verify.add_argument("file")
    verify.add_argument("--vkey", action="append", required=True,
                        help="verifier key text or a file holding it (repeatable)")
    verify.add_argument("--trusted-checkpoint", action="append", default=[],
                        help="a signed checkpoint you kept from earlier (repeatable)")
    verify.add_argument("--tsa-ca", action="append", default=[],
                        help="PEM certificates of the TSA you trust (repeatable)")
    verify.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    return check_bundle(args.file, args.vkey, trusted=args.trusted_checkpoint,
                        tsa_ca=args.tsa_ca, as_json=args.json)


if __name__ == "__main__":
    sys.exit(main())
