"""The report as a paged PDF (ReportLab; engine chosen by measurement, see benchmarks/README.md).

A4 landscape, every page headed with the tenant and the period and numbered "page N of M";
a table of contents with page numbers and PDF bookmarks for every section and discrepancy.
Fonts: Bitstream Vera, shipped inside the reportlab package, embedded (subset) in the file:
nothing comes from the system or the network. `invariant=1` fixes the creation date and
the document id, so the same document always gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import reportlab
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (BaseDocTemplate, Flowable, Frame, KeepTogether, PageTemplate,
                                Paragraph, Spacer, Table, TableStyle)
from reportlab.platypus.tableofcontents import TableOfContents
from xml.sax.saxutils import escape

from indelible.reports import charts
from indelible.reports.content import format_duration

PAGE = landscape(A4)
MARGIN = 36  # points
FONT, BOLD = "IndelibleVera", "IndelibleVera-Bold"
TIMELINE_WIDTHS = (28, 106, 134, 58, 100, 114, 230)  # points; sums to the frame width


class _AsciiFastTTFont(TTFont):
    """ReportLab maps each string to the font's subsets one character at a time in Python,
    the largest cost of a long report. With `asciiReadable` (ReportLab's default), printable
    ASCII always has its own code in subset 0, so such a string maps to itself: the same
    bytes, without the loop."""

    def splitString(self, text, doc, encoding="utf-8"):
        if isinstance(text, str) and text and text.isascii() and text.isprintable() and \
                self._asciiReadable and doc in self.state:
            return [(0, text.encode("ascii"))]
        return super().splitString(text, doc, encoding)


def _register_fonts() -> None:
    fonts = Path(reportlab.__file__).parent / "fonts"
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(_AsciiFastTTFont(FONT, str(fonts / "Vera.ttf"), asciiReadable=True))
        pdfmetrics.registerFont(_AsciiFastTTFont(BOLD, str(fonts / "VeraBd.ttf"), asciiReadable=True))


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
    return {"body": base,
            "title": ParagraphStyle("title", parent=base, fontName=BOLD, fontSize=18, leading=24),
            "h1": ParagraphStyle("h1", parent=base, fontName=BOLD, fontSize=13, leading=18,
                                 spaceBefore=10, spaceAfter=6),
            "h2": ParagraphStyle("h2", parent=base, fontName=BOLD, fontSize=10, leading=14,
                                 spaceBefore=10, spaceAfter=3),
            "small": ParagraphStyle("small", parent=base, fontSize=6, leading=7),
            "mono": ParagraphStyle("mono", parent=base, fontSize=7.5, leading=9.5),
            "toc1": ParagraphStyle("toc1", parent=base, fontSize=9, leading=12),
            "toc2": ParagraphStyle("toc2", parent=base, fontSize=7.5, leading=9.5, leftIndent=14)}


class _NumberedCanvas(Canvas):
    """Holds every page until the end, so each can say "page N of M"."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(FONT, 7)
            self.setFillColor(colors.HexColor("#5a6272"))
            self.drawRightString(PAGE[0] - MARGIN, MARGIN - 18, f"page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


class _SizingCanvas(Canvas):
    """Lays pages out without drawing text or writing a file: the pass that only finds on
    which page each heading lands, for the table of contents."""

    def drawString(self, *args, **kwargs):
        pass

    drawRightString = drawCentredString = drawString

    def drawText(self, *args, **kwargs):
        pass

    def save(self):
        pass


class _Document(BaseDocTemplate):
    def __init__(self, buffer, header: str, **kwargs):
        super().__init__(buffer, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                         topMargin=MARGIN + 8, bottomMargin=MARGIN, invariant=1,
                         initialFontName=FONT, **kwargs)  # not Helvetica: every font embedded
        self.header = header
        frame = Frame(MARGIN, MARGIN, PAGE[0] - 2 * MARGIN, PAGE[1] - 2 * MARGIN - 8, id="body",
                      leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
        self.addPageTemplates([PageTemplate("page", [frame], onPage=self._decorate)])

    def _decorate(self, canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(colors.HexColor("#5a6272"))
        canvas.drawString(MARGIN, PAGE[1] - MARGIN + 6, self.header)
        canvas.setStrokeColor(colors.HexColor("#c9ced8"))
        canvas.line(MARGIN, PAGE[1] - MARGIN + 2, PAGE[0] - MARGIN, PAGE[1] - MARGIN + 2)
        canvas.restoreState()

    def afterFlowable(self, flowable) -> None:
        key = getattr(flowable, "toc_key", None)
        if key is None:
            return
        level, text = flowable.toc_level, flowable.toc_text
        self.canv.bookmarkPage(key)
        self.canv.addOutlineEntry(text, key, level=level, closed=level > 0)
        self.notify("TOCEntry", (level, text, self.page, key))


def _heading(text: str, style: ParagraphStyle, level: int, key: str) -> Paragraph:
    p = Paragraph(escape(text), style)
    p.toc_key, p.toc_level, p.toc_text = key, level, text
    return p


def _grid(rows: list[list], widths=None, numeric_from: int | None = None) -> Table:
    style = [("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 8),
             ("FONTNAME", (0, 0), (-1, 0), BOLD), ("LEADING", (0, 0), (-1, -1), 10),
             ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d5d9e0")),
             ("BOTTOMPADDING", (0, 0), (-1, -1), 2), ("TOPPADDING", (0, 0), (-1, -1), 1),
             ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 10)]
    if numeric_from is not None:
        style.append(("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"))
    return Table(rows, colWidths=widths, hAlign="LEFT", style=TableStyle(style), repeatRows=1)


class _Timeline(Flowable):
    """A timeline table drawn directly: one text object per page slice, column by column.

    Platypus' Table styles, measures and draws every cell on its own; at 10,000 rows that
    was most of the report's time. Every cell here is plain text (pre-wrapped into lines),
    so a row's height is its line count times the leading, and splitting across pages is
    counting rows. The header repeats on every page."""

    HEAD = ("seq", "time (UTC)", "actor", "role", "status before -> after", "note",
            "leaf hash (SHA-256, hex)")
    SIZES = (6, 6, 5.5, 6, 6, 6, 5.5)  # points per column: ids and hashes a little smaller
    LEADING, PAD = 7.0, 2.0  # points

    def __init__(self, rows: list[list[str]], heights: list[float] | None = None):
        super().__init__()
        self.rows = rows
        self.heights = heights or [(max(c.count("\n") for c in r) + 1) * self.LEADING + self.PAD
                                   for r in rows]

    def wrap(self, available_width, available_height):
        self.width = sum(TIMELINE_WIDTHS)
        self.height = self.LEADING + self.PAD + sum(self.heights)
        return self.width, self.height

    def split(self, available_width, available_height):
        used, n = self.LEADING + self.PAD, 0
        while n < len(self.rows) and used + self.heights[n] <= available_height:
            used += self.heights[n]
            n += 1
        if n == 0:
            return []
        return [_Timeline(self.rows[:n], self.heights[:n]), _Timeline(self.rows[n:], self.heights[n:])]

    def draw(self):
        canvas = self.canv
        if isinstance(canvas, _SizingCanvas):
            return
        tops, y = [], self.height - self.LEADING - self.PAD
        for h in self.heights:
            tops.append(y)
            y -= h
        canvas.setStrokeColor(colors.HexColor("#d5d9e0"))
        canvas.setLineWidth(0.2)
        canvas.lines([(0, t, self.width, t) for t in [self.height - self.LEADING - self.PAD, *tops[1:], y]])
        text = canvas.beginText()
        text.setFont(BOLD, 6, self.LEADING)
        x = 0.0
        for head, width in zip(self.HEAD, TIMELINE_WIDTHS):
            text.setTextOrigin(x, self.height - self.LEADING + 1.5)
            text.textOut(head)
            x += width
        x = 0.0
        for column, (width, size) in enumerate(zip(TIMELINE_WIDTHS, self.SIZES)):
            text.setFont(FONT, size, self.LEADING)
            for row, top in zip(self.rows, tops):
                text.setTextOrigin(x, top - self.LEADING + 1.5)
                text.textLines(row[column], trim=0) if "\n" in row[column] else text.textOut(row[column])
            x += width
        canvas.drawText(text)


def render_pdf(doc: dict) -> bytes:
    _register_fonts()
    st = _styles()
    period = doc["period"]["label"]
    header = f"Indelible compliance report  |  tenant {doc['tenant']}  |  period {period} (UTC)"
    toc = TableOfContents(levelStyles=[st["toc1"], st["toc2"]], dotsMinLevel=0,
                          tableStyle=TableStyle([("FONTNAME", (0, 0), (-1, -1), FONT),
                                                 ("VALIGN", (0, 0), (-1, -1), "TOP"),
                                                 ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                                 ("RIGHTPADDING", (0, 0), (-1, -1), 0)]))
    s = doc["summary"]
    story = [Paragraph(f"Compliance report: {escape(doc['tenant'])}", st["title"]),
             Paragraph(f"Period {escape(period)} (UTC). Ledger {escape(doc['log'])}, entries 0 "
                       f"to {doc['covered']['last_seq']}, covered by the signed checkpoint of "
                       f"size {doc['covered']['tree_size']} (section 4). {s['discrepancies']} "
                       f"discrepancies, {s['entries']} timeline entries.", st["body"]),
             Spacer(0, 8), Paragraph("Contents", st["h1"]), toc]
    story += _summary(doc, st) + _charts(s, st) + _cases(doc, st) + _proof(doc, st)

    def document(buffer):
        return _Document(buffer, header, title=f"Compliance report {doc['tenant']} {period}",
                         author="Indelible", subject="Compliance report with its own proof",
                         creator="Indelible", producer="Indelible (ReportLab)")
    return _build_with_contents(document, story, toc)


def _headings(story: list):
    for f in story:
        if getattr(f, "toc_key", None) is not None:
            yield f
        yield from _headings(getattr(f, "_content", None) or [])  # inside KeepTogether


def _build_with_contents(document, story: list, toc: TableOfContents) -> bytes:
    """Two passes instead of multiBuild's two or three full ones. The contents are seeded
    with every heading (on page 999), so a first pass that draws no text finds the page of
    each heading with the contents already at their final height; the second pass draws
    everything. Should a heading still move, passes repeat until the contents hold."""
    toc._lastEntries = [(f.toc_level, f.toc_text, 999, f.toc_key) for f in _headings(story)]
    edits: list = []  # as in multiBuild: undo the `_postponed` marks after each pass

    def one_pass(canvasmaker) -> bytes:
        buffer = io.BytesIO()
        template = document(buffer)
        template._indexingFlowables = [toc]  # who hears TOCEntry
        template._multiBuildEdits = edits.append
        toc._entries = []
        template.build(story[:], canvasmaker=canvasmaker)
        for undo, *args in edits:
            undo(*args)
        edits.clear()
        return buffer.getvalue()

    one_pass(_SizingCanvas)
    for _ in range(4):
        toc._lastEntries = toc._entries[:]
        pdf = one_pass(_NumberedCanvas)
        if toc.isSatisfied():
            return pdf
    raise RuntimeError("the table of contents did not settle after 4 passes")


def _summary(doc: dict, st) -> list:
    s = doc["summary"]
    counts = [["by status", "count"]] + [[k, v] for k, v in s["by_status"].items()]
    sev = [["by severity", "count"]] + [[k, v] for k, v in s["by_severity"].items()]
    src = [["by source", "count"]] + [[k, v] for k, v in s["by_source"].items()]
    money = [["currency", "discrepancies", "expected", "actual", "difference", "|difference|"]] + [
        [c, a["count"], a["expected"], a["actual"], a["difference"], a["absolute"]]
        for c, a in s["amounts_by_currency"].items()]
    ack, res = s["time_to_acknowledge"], s["time_to_resolve"]
    times = [["measure", "discrepancies", "median", "p90"],
             ["time to acknowledge", ack["count"], format_duration(ack["median_seconds"]),
              format_duration(ack["p90_seconds"])],
             ["time to resolve (resolved or auto-closed)", res["count"],
              format_duration(res["median_seconds"]), format_duration(res["p90_seconds"])]]
    side = Table([[_grid(counts, numeric_from=1), _grid(sev, numeric_from=1),
                   _grid(src, numeric_from=1)]], hAlign="LEFT",
                 style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("FONTNAME", (0, 0), (-1, -1), FONT),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0),
                                   ("RIGHTPADDING", (0, 0), (-1, -1), 24)]))
    return [_heading("1. Summary", st["h1"], 0, "summary"), side,
            Paragraph("Amounts by currency (each at its own ISO 4217 scale)", st["h2"]),
            _grid(money, numeric_from=1),
            Paragraph("Time to acknowledge and to resolve", st["h2"]), _grid(times, numeric_from=1),
            Spacer(0, 6), Paragraph(f"Escalations fired: <b>{s['escalations_fired']}</b>", st["body"])]


def _drawing(chart: charts.Chart, scale: float = 0.95) -> Drawing:
    d = Drawing(charts.WIDTH * scale, charts.HEIGHT * scale, initialFontName=FONT)
    flip = charts.HEIGHT  # SVG's y grows downwards, PDF's upwards
    for s in chart.shapes:
        if isinstance(s, charts.Rect):
            d.add(Rect(s.x * scale, (flip - s.y - s.h) * scale, s.w * scale, s.h * scale,
                       fillColor=colors.HexColor(s.fill), strokeColor=None))
        elif isinstance(s, charts.Line):
            d.add(Line(s.x1 * scale, (flip - s.y1) * scale, s.x2 * scale, (flip - s.y2) * scale,
                       strokeColor=colors.HexColor(s.stroke), strokeWidth=0.5))
        else:
            d.add(String(s.x * scale, (flip - s.y) * scale, s.text, fontName=FONT,
                         fontSize=s.size * scale, textAnchor=s.anchor))
    return d


def _charts(s: dict, st) -> list:
    return [_heading("2. Charts", st["h1"], 0, "charts"),
            KeepTogether([Paragraph("Discrepancies opened and resolved (or auto-closed) per day, "
                                    "UTC", st["h2"]), _drawing(charts.opened_resolved(s["per_day"]))]),
            KeepTogether([Paragraph(f"Ageing of discrepancies not yet closed at "
                                    f"{s['ageing_as_of']}, by severity", st["h2"]),
                          _drawing(charts.ageing(s["ageing"]))])]


_FIELDS = (("external reference", "external_ref"), ("source", "source"), ("kind", "kind"),
           ("expected", "expected_amount"), ("actual", "actual_amount"),
           ("difference", "difference"), ("currency", "currency"), ("severity", "severity"),
           ("status", "status"), ("assignee", "assignee"), ("detected at", "detected_at"),
           ("opened at", "opened_at"), ("acknowledged at", "acknowledged_at"),
           ("closed at", "closed_at"), ("resolution", "resolution_code"),
           ("escalations fired", "escalations_fired"))


def _cases(doc: dict, st) -> list:
    flow = [_heading("3. Discrepancies", st["h1"], 0, "discrepancies"),
            Paragraph(escape(doc["scope"]) + ".", st["body"])]
    for i, c in enumerate(doc["discrepancies"], 1):
        heading = _heading(f"3.{i} {c['external_ref']} ({c['source']}) - {c['id']}", st["h2"],
                           1, f"d{i}")
        cells = [(label, "-" if c[key] is None else str(c[key])) for label, key in _FIELDS]
        rows = [sum((list(pair) for pair in cells[j:j + 4]), []) for j in range(0, len(cells), 4)]
        fields = Table(rows, hAlign="LEFT", style=TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), FONT), ("FONTSIZE", (0, 0), (-1, -1), 7),
            ("LEADING", (0, 0), (-1, -1), 8.5), ("TEXTCOLOR", (0, 0), (0, -1), colors.grey),
            ("TEXTCOLOR", (2, 0), (2, -1), colors.grey), ("TEXTCOLOR", (4, 0), (4, -1), colors.grey),
            ("TEXTCOLOR", (6, 0), (6, -1), colors.grey), ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 6), ("TOPPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
        flow.append(KeepTogether([heading, fields]))  # a heading never ends a page alone
        if c["resolution_note"]:
            flow.append(Paragraph("Resolution note: " + escape(c["resolution_note"]), st["small"]))
        flow += [Spacer(0, 4), _timeline(c["timeline"], st)]
    return flow


def _timeline(timeline: list[dict], st) -> _Timeline:
    rows: list[list[str]] = []
    note_width, actor_width = TIMELINE_WIDTHS[5] - 3, TIMELINE_WIDTHS[2] - 3
    for t in timeline:
        note = t["type"].removeprefix("discrepancy.") + (": " + t["note"] if t["note"] else "")
        rows.append([str(t["seq"]), t["at"], _wrap(t["actor"], actor_width, 5.5), t["role"],
                     f"{t['status_before'] or '-'} -> {t['status_after']}",
                     _wrap(note, note_width, 6), t["leaf_hash"]])
    return _Timeline(rows)


def _wrap(text: str, width: float, size: float) -> str:
    """Lines of at most `width` points, broken between words (or inside a word longer than
    a line): plain strings with newlines lay out many times faster than Paragraphs."""
    if len(text) * size < width or pdfmetrics.stringWidth(text, FONT, size) <= width:
        return text
    lines, line = [], ""
    for word in text.replace("\n", " ").split(" "):
        candidate = f"{line} {word}" if line else word
        if pdfmetrics.stringWidth(candidate, FONT, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        while pdfmetrics.stringWidth(word, FONT, size) > width:  # a hash, an id: cut it
            cut = max(1, int(len(word) * width / pdfmetrics.stringWidth(word, FONT, size)))
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    lines.append(line)
    return "\n".join(lines)


def _proof(doc: dict, st) -> list:
    cp, v = doc["checkpoint"], doc["verification"]
    check = v["at_generation"]
    note = escape(cp["note"]).replace("\n", "<br/>")
    verdict = ("<b>verified</b>" if check["result"] == "verified"
               else f"<b>FAILED</b>: {escape(str(check['first_problem']))}")
    yes = {True: "yes", False: "NO"}
    rows = [["check", "result"], ["entries checked", check["entries_checked"]],
            ["leaf hashes recomputed from the entries", yes[check["leaf_hashes"]]],
            ["hash chain (prev) intact, no gaps", yes[check["hash_chain"]]],
            ["Merkle root equals the signed root", yes[check["merkle_root"]]],
            ["checkpoint signature valid under the verifier key",
             yes[check["checkpoint_signature"]]]]
    flow = [_heading("4. Signed checkpoint", st["h1"], 0, "checkpoint"),
            Paragraph(f"Every entry in this report has a seq below {cp['size']}: this C2SP "
                      f"checkpoint (tree size {cp['size']}, root {escape(cp['root_hash'])}) "
                      "covers all of them.", st["body"]), Spacer(0, 4),
            Paragraph(note, st["mono"]),
            _heading("5. Verification", st["h1"], 0, "verification"),
            Paragraph("Verifier key:", st["body"]), Paragraph(escape(v["verifier_key"]), st["mono"]),
            Spacer(0, 4),
            Paragraph(f"Result of verifying the covered range when the report was made: {verdict}",
                      st["body"]), _grid(rows), Paragraph("How to check this report offline", st["h2"])]
    flow += [Paragraph(f"{i}. {escape(step)}", st["body"])
             for i, step in enumerate(v["how_to_check_offline"], 1)]
    return flow
