"""/metrics' queue lengths (operations.py): report jobs and outbox events per tenant, read at
scrape time from the real tables."""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import ConnectionPool

from indelible.config import Settings
from indelible.operations import _service_metrics
from indelible.store import reports

pytestmark = pytest.mark.storage


def _samples(app_url) -> dict[str, list]:
    settings = Settings(data_dir=None, database_url=app_url, ingest_enabled=False)
    with ConnectionPool(app_url, min_size=0, max_size=1, open=True,
                        kwargs={"autocommit": True}) as pool:
        families = list(_service_metrics(pool, settings, None, None))
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in families}


def test_queued_report_jobs_are_counted_per_tenant(conn, app_url, registered_tenant):
    for _ in range(2):
        reports.enqueue(conn, registered_tenant, str(uuid.uuid4()),
                        {"request": {}, "actor": {}}, "ops")
    samples = _samples(app_url)
    assert ({"tenant": registered_tenant, "status": "queued"}, 2) in samples["indelible_report_jobs"]
    assert samples["indelible_database_up"] == [({}, 1)]
    assert "indelible_outbox_events" in samples
    # Leave nothing queued for a report worker of another test's service on this database.
    while (job := reports.claim(conn, "test", registered_tenant)) is not None:
        reports.finish(conn, job, "failed", failure="a metrics test's placeholder")
    assert ({"tenant": registered_tenant, "status": "queued"}, 2) not in \
        _samples(app_url)["indelible_report_jobs"]
