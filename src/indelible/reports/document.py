"""The report as one JSON-shaped document: what every format renders. Pure: no I/O.

`ReportInputs` is what the use case read from the ledger; `build_document` turns it into
the document the JSON file is (byte for byte, through `to_json_bytes`), and the HTML and
PDF renderers lay out. The document names the covered tree size and its signed checkpoint
but not when or by whom it was generated, nor the report id: those are in the
`report.generated` entry, so regenerating over the same range gives the same bytes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

import orjson

from indelible.reports.content import summarise
from indelible.reports.request import ReportRequest, format_utc

FORMAT = "indelible-report/v1"


@dataclass(frozen=True)
class ReportInputs:
    tenant: str
    origin: str  # the tenant log's checkpoint origin
    request: ReportRequest
    tree_size: int  # entries [0, tree_size) are covered
    checkpoint_note: str  # the C2SP signed note of that size
    root_hash: bytes
    verifier_key: str  # C2SP verifier key text
    range_check: dict  # RangeCheck.to_json()
    cases: list[dict]  # CaseBuilder.to_json(), ordered by opened_at, id
    as_of: datetime  # ageing is measured at this instant


def how_to_check(tenant: str, tree_size: int) -> list[str]:
    """Steps an auditor follows with nothing but this report and the public key."""
    return [
        "Hash this file (sha256sum) and run `indelible report verify FILE`: it names the "
        "report.generated ledger entry that recorded this exact file, or says none does.",
        "Keep the signed checkpoint and the verifier key printed here. Check the signature "
        "offline with any C2SP signed-note verifier (Ed25519), e.g. "
        "`indelible verify --tenant " + tenant + " --trusted-checkpoint checkpoint.txt`.",
        "For any entry listed here, fetch its inclusion proof against this checkpoint "
        f"(GET /v1/logs/{tenant}/entries/SEQ?format=tlog-proof&tree_size={tree_size}) and "
        "run `indelible verify-proof --vkey KEY FILE`: the proof's leaf hash must equal the "
        "leaf hash in the timeline.",
        "Regenerate the report with the parameters of its ledger entry over the same tree size "
        f"(`indelible report ... --tree-size {tree_size}`): the files are byte-identical.",
    ]


def build_document(inputs: ReportInputs) -> dict:
    r = inputs.request
    return {
        "format": FORMAT,
        "tenant": inputs.tenant,
        "log": inputs.origin,
        "period": {"from": format_utc(r.period_from), "to": format_utc(r.period_to),
                   "label": r.label},
        "parameters": r.to_json(),
        "scope": "discrepancies with at least one ledger entry recorded in the period; each "
                 "timeline up to the end of the period",
        "covered": {"tree_size": inputs.tree_size, "first_seq": 0,
                    "last_seq": inputs.tree_size - 1},
        "summary": summarise(inputs.cases, period_from=r.period_from, period_to=r.period_to,
                             as_of=inputs.as_of),
        "discrepancies": inputs.cases,
        "checkpoint": {"note": inputs.checkpoint_note, "size": inputs.tree_size,
                       "root_hash": base64.b64encode(inputs.root_hash).decode()},
        "verification": {"verifier_key": inputs.verifier_key,
                         "at_generation": inputs.range_check,
                         "how_to_check_offline": how_to_check(inputs.tenant, inputs.tree_size)},
    }


def to_json_bytes(document: dict) -> bytes:
    """Sorted keys, two-space indent, a final newline: the same document, the same bytes."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
