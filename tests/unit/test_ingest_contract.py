"""The stream message contract: what is accepted, and the reason for everything refused."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from indelible import domain
from indelible.ingest.contract import (_DETECTED, _MATCHED, MAX_MESSAGE, ContractError, Detected,
                                       Matched, parse_message)

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "recon-message.schema.json"
DETECTED = {"type": "discrepancy.detected", "tenant": "acme", "source": "stripe",
            "external_ref": "po-1", "kind": "amount_mismatch", "expected_amount": "9850.00",
            "actual_amount": "10000.00", "currency": "EUR", "detected_at": "2026-11-23T05:00:00Z",
            "transaction_refs": ["ch_1"], "metadata": {"batch": 7}}
MATCHED = {"type": "discrepancy.matched", "tenant": "acme", "source": "stripe",
           "external_ref": "po-1", "matched_at": "2026-11-23T06:00:00Z", "reason": "late settlement"}


def _parse(body) -> Detected | Matched:
    return parse_message(orjson.dumps(body), subject_tenant="acme")


def test_a_detected_message_becomes_an_open_command():
    message = _parse(DETECTED)
    assert isinstance(message, Detected) and message.ref == ("stripe", "po-1")
    assert isinstance(message.command, domain.OpenDiscrepancy)
    assert message.command.detected_at == "2026-11-23T05:00:00.000000Z"


def test_a_matched_message_names_the_discrepancy_it_closes():
    message = _parse(MATCHED)
    assert isinstance(message, Matched) and message.reason == "late settlement"
    assert _parse({k: v for k, v in MATCHED.items() if k != "reason"}).reason


@pytest.mark.parametrize("data, reason", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b"x" * (MAX_MESSAGE + 1), f"limit is {MAX_MESSAGE}"),
    (orjson.dumps({**DETECTED, "type": "discrepancy.deleted"}), "type: must be"),
    (orjson.dumps({**DETECTED, "type": ["discrepancy.detected"]}), "type: must be"),
    (orjson.dumps({**DETECTED, "surprise": 1}), "surprise: not a field"),
    (orjson.dumps({**DETECTED, "tenant": "other"}), "does not match the subject's tenant"),
    (orjson.dumps({k: v for k, v in DETECTED.items() if k != "currency"}), "currency: required"),
    (orjson.dumps({**DETECTED, "expected_amount": 9850.0}), "expected_amount: must be a decimal string"),
    (orjson.dumps({**DETECTED, "actual_amount": 10000}), "actual_amount: must be a decimal string"),
    (orjson.dumps({**DETECTED, "currency": "KWD", "expected_amount": "1.2345"}), "KWD allows 3"),
    (orjson.dumps({**DETECTED, "currency": "XYZ"}), "XYZ"),
    (orjson.dumps({**DETECTED, "detected_at": "yesterday"}), "detected_at"),
    (orjson.dumps({**DETECTED, "metadata": {"rate": 1.5}}), "metadata"),
    (orjson.dumps({k: v for k, v in MATCHED.items() if k != "matched_at"}), "matched_at: required"),
    (orjson.dumps({**MATCHED, "external_ref": 42}), "external_ref: must be a string"),
])
def test_a_message_breaking_the_contract_is_refused_with_its_reason(data, reason):
    with pytest.raises(ContractError, match=reason):
        parse_message(data, subject_tenant="acme")


def test_the_published_schema_names_exactly_the_fields_the_parser_accepts():
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["$defs"]["detected"]["properties"]) == _DETECTED
    assert set(schema["$defs"]["matched"]["properties"]) == _MATCHED


@pytest.mark.parametrize("field,value,reason", [
    ("source", "a\u0000b", "source:"),
    ("external_ref", "po\u00001", "external_ref:"),
    ("external_ref", " po-1", "external_ref:"),
    ("matched_at", "yesterday", "matched_at:"),
    ("reason", "a\u0000", "reason:"),
])
def test_a_match_is_held_to_the_rules_of_the_detection_it_closes(field, value, reason):
    body = {**MATCHED, field: value}
    with pytest.raises(ContractError, match=reason):
        parse_message(orjson.dumps(body), subject_tenant=body["tenant"])
