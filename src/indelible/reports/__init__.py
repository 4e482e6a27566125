"""Compliance reports (issue 13): what a report says and how it is laid out.

    request.py   the parameters, checked (every bad field named) and made canonical
    content.py   timelines and the summary, folded from ledger entries (pure)
    document.py  the report as one JSON document, which every format renders (pure)
    charts.py    SVG charts drawn from the figures (pure)
    html.py      one self-contained HTML page
    pdf.py       the paged PDF (ReportLab; fonts shipped and embedded)
    schedule.py  which period a recurring report covers (pure)
    worker.py    the worker inside `indelible up` that renders queued jobs

The use cases (ask, follow, fetch, generate, verify a file, schedules) are in
`usecases/reports.py`; the SQL in `store/reports.py` and `store/report_data.py`.
"""
