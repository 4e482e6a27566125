"""A dead letter's reason told as a person reads it, whatever shape of JSON it came in."""

from __future__ import annotations

import pytest

from indelible.ingest.dead_letters import readable_reason


@pytest.mark.parametrize("reason", [
    "unknown tenant 'nobody'",
    "not JSON: unexpected character: line 1 column 1 (char 0)",
    "tenant: 'a[1]' does not match the subject's tenant 'a'",
    "x: [not json",
    "{}",
])
def test_a_sentence_or_something_that_is_not_a_json_document_is_left_as_it_is(reason):
    assert readable_reason(reason) == reason


@pytest.mark.parametrize(("reason", "told"), [
    ('{"errors": [{"field": "currency", "rule": "must be an ISO 4217 code"}]}',
     "currency: must be an ISO 4217 code"),
    ('{"type": "about:blank", "title": "Invalid request", "status": 422, "detail": "bad amount",'
     ' "errors": [{"field": "expected_amount", "rule": "a decimal string"}]}',
     "bad amount (expected_amount: a decimal string)"),
    ('[{"loc": ["body", "currency"], "msg": "field required", "type": "missing"}]',
     "body.currency: field required"),
    ('failed 3 deliveries: {"code": 10071, "description": "wrong last sequence"}',
     "failed 3 deliveries: wrong last sequence"),
    ('{"amount": {"currency": "must be ISO 4217", "value": "not a decimal"}, "refs": [1, 2]}',
     "amount.currency: must be ISO 4217; amount.value: not a decimal; refs: 1, 2"),
])
def test_a_json_reason_is_told_as_field_and_rule_phrases(reason, told):
    assert readable_reason(reason) == told
