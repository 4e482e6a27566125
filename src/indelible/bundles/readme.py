"""The README every bundle carries: what is in it, and how to check it with nothing of ours."""

from __future__ import annotations

README = """\
# Evidence bundle

This zip is evidence exported from an Indelible ledger (log `{origin}`). It proves, with no
database and no network, that the entries in `entries/` are exactly what the ledger committed
to in its signed checkpoint of size {size}, that nothing between them was left out, and (where
`checkpoints/*.tsr` tokens are present) no later than when a Time Stamping Authority says.

What you need: the log's verifier key, obtained from the ledger's operator by a channel you
trust (the `verifier-key.txt` in here is a copy and proves nothing by itself), and, to check
timestamps, the TSA's CA certificate.

## Check it

    python3 -m venv v && v/bin/pip install cryptography rfc3161-client
    v/bin/pip install --no-deps INDELIBLE     # the indelible wheel or source tree you were given
    v/bin/python -m indelible.auditor verify-bundle THIS.zip --vkey KEY [--tsa-ca TSA-CA.pem] \\
        [--trusted-checkpoint CHECKPOINT-YOU-KEPT ...]

(`indelible verify-bundle` is the same command in a full install.) That check uses only the
`indelible.proofs` package, the standard library, `cryptography` and, for tokens only,
`rfc3161-client`. Exit 0: intact. 1: not intact, naming each file and what failed. 2: the
bundle could not be checked.

## What is checked, and what each file is

- `manifest.intoto.json`: an in-toto Statement v1 listing every other file with its SHA-256,
  and in its predicate the query that selected the entries, the entry count and control totals
  by currency (discrepancies, expected and actual amounts, differences). The export itself is
  a ledger entry (`evidence.exported`) that records this manifest's SHA-256.
- `entries/<seq>.json`: each entry's exact canonical bytes (RFC 8785 JSON);
  `entries/<seq>.tlog-proof`: its C2SP tlog-proof (RFC 9162 inclusion proof) against the
  checkpoint of size {size}.
- `checkpoints/<size>.checkpoint`: C2SP signed checkpoints: the largest is the one every
  entry is proved against; the others are the first checkpoints that covered exported entries,
  each proved consistent with the next by `consistency/<a>-<b>.proof`.
- `checkpoints/<size>.tsr`: RFC 3161 timestamp tokens over those checkpoints' signed notes.
- The `prev` link between consecutive entries and each stream's versions: a dropped entry is
  named. `snapshots/`: resolution snapshots, checked against the history digest of their
  entries. `evidence/<sha256>` and `reports/`: files, checked against the SHA-256 their
  entries recorded.
"""


def readme(origin: str, size: int) -> bytes:
    return README.format(origin=origin, size=size).encode()
