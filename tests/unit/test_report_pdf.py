"""The PDF renderer: real PDFs read back, the same bytes every time, and the ASCII fast path
of the font mapping producing exactly what ReportLab's own mapping does."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from pypdf import PdfReader
from reportlab.pdfbase.ttfonts import TTFont

from indelible.reports import pdf
from indelible.reports.content import CaseBuilder
from indelible.reports.document import ReportInputs, build_document
from indelible.reports.request import parse_request


def _document(cases: int = 3, comments: int = 4) -> dict:
    built = []
    for c in range(cases):
        case = CaseBuilder()
        opened = {"id": f"0193a1b2-c3d4-7e5f-8a9b-{c:012d}", "external_ref": f"po-{c}",
                  "source": "bank", "kind": "amount_mismatch", "expected_amount": "100",
                  "actual_amount": "90", "currency": "JPY", "difference": "-10",
                  "severity": "low", "detected_at": "2026-11-01T00:00:00Z", "metadata": {},
                  "transaction_refs": []}
        case.add(c * 10, {"type": "discrepancy.opened", "at": "2026-11-02T00:00:00.000000Z",
                          "actor": {"id": "key:ana", "role": "analyst"}, "data": opened}, b"\1" * 32)
        for n in range(comments):
            case.add(c * 10 + n + 1, {"type": "discrepancy.commented",
                                      "at": f"2026-11-02T0{n}:00:00.000000Z",
                                      "actor": {"id": "key:ana", "role": "analyst"},
                                      "data": {"text": f"Prüfung {n}: (bank) statement \\ line"}},
                     bytes([n]) * 32)
        built.append(case.to_json())
    return build_document(ReportInputs(
        tenant="acme", origin="test/log/acme", request=parse_request(
            {"from": "2026-11-01", "to": "2026-12-01"}), tree_size=40,
        checkpoint_note="test/log/acme\n40\nAAAA\n\n— test abcd\n", root_hash=b"\0" * 32,
        verifier_key="test+01020304+AAAA", range_check={
            "entries_checked": 40, "leaf_hashes": True, "hash_chain": True, "merkle_root": True,
            "checkpoint_signature": True, "first_problem": None, "result": "verified"},
        cases=built, as_of=datetime(2026, 12, 1, tzinfo=timezone.utc)))


def test_the_pdf_is_paged_headed_numbered_and_says_what_the_document_says():
    content = pdf.render_pdf(_document())
    reader = PdfReader(io.BytesIO(content))
    pages = [p.extract_text() for p in reader.pages]
    assert all("tenant acme" in p and "2026-11-01 to 2026-11-30" in p for p in pages)
    assert all(f"page {i} of {len(pages)}" in p for i, p in enumerate(pages, 1))
    text = "\n".join(pages)
    for needle in ("Contents", "1. Summary", "2. Charts", "3.1 po-0", "Prüfung 3",
                   "01" * 32, "4. Signed checkpoint", "5. Verification", "verified"):
        assert needle in text, needle
    assert [o.title for o in reader.outline[:2]] == ["1. Summary", "2. Charts"]  # bookmarks
    fonts = {f["/BaseFont"] for page in reader.pages
             for f in page["/Resources"]["/Font"].get_object().values()}
    assert all("Vera" in str(name) for name in fonts)  # embedded (subset) TrueType, nothing else


def test_the_same_document_gives_the_same_bytes_and_the_fast_path_changes_none(monkeypatch):
    document = _document()
    first = pdf.render_pdf(document)
    assert pdf.render_pdf(document) == first
    monkeypatch.setattr(pdf._AsciiFastTTFont, "splitString", TTFont.splitString)
    assert pdf.render_pdf(document) == first
