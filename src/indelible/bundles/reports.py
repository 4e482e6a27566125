"""Report files for a bundle: the seam to the reports store (issue 13).

Reports are recorded as `report.generated` entries naming each file's SHA-256, with the
bytes kept append-only in PostgreSQL (`store/reports.py`, by tenant, report id and name).
When the exported entries include such an entry (a range export), its files go into
`reports/<report id>/<name>` and verify-bundle checks them against the entry; a file the
store lacks is left out, and verify-bundle says so.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg


def report_files(conn: psycopg.Connection, tenant: str,
                 generated: list[dict]) -> Iterator[tuple[str, bytes]]:
    """(bundle name, bytes) of the files that `report.generated` entries' data name."""
    try:
        from indelible.store import reports as store
    except ImportError:
        return
    read = getattr(store, "read_file", None)
    if read is None:
        return
    for data in generated:
        report_id = data.get("report_id")
        for f in data.get("files", []):
            found = read(conn, tenant, report_id, f["name"])
            if found is not None:
                yield f"reports/{report_id}/{f['name']}", found[1]
