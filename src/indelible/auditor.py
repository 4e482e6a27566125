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
        with zipfile.ZipFile(path) as archive:
            report = verify_bundle(archive, verifiers, trusted_notes=notes,
                                   check_token=check_token, render_snapshot=render_snapshot)
    except (OSError, zipfile.BadZipFile, ValueError, BundleError, ProofError) as e:
        print(f"error: the bundle could not be checked: {e}", file=err)
        return EXIT_UNUSABLE
    print(json.dumps(report.to_json(), indent=2) if as_json else report.to_text(), file=out)
    return EXIT_INTACT if report.intact else EXIT_NOT_INTACT


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
