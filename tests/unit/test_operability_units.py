"""Log lines, settings and alarms an operator relies on (pure: no servers)."""

from __future__ import annotations

import json
import logging

import pytest

from indelible import logs, metrics
from indelible.config import ConfigError, Settings
from indelible.monitor.alarms import Alarm, AlarmBook, IntegrityAlarms
from indelible.monitor.worker import spread

TOKEN = "idl_" + "A" * 43


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("indelible.test", logging.WARNING, __file__, 1, message, args, exc_info)


@pytest.mark.parametrize("secret, shown", [
    (TOKEN, "idl_[redacted]"),
    ("Authorization: Bearer abc.def", "Authorization: Bearer [redacted]"),
    ("postgresql://indelible_app:s3cret@db:5432/x", "postgresql://indelible_app:[redacted]@db:5432/x"),
    ("host=db password=s3cret user=x", "host=db password=[redacted] user=x"),
    ("seed SUAMLK2ZNL35WSMW37E7UD4VZ7ELPKW7DHC3BWBSD2GCZ7IUQQXZIORRBU",
     "seed [redacted nkey seed]"),
    ("Authorization: Basic dXNlcjpzM2NyZXQ=", "Authorization: Basic [redacted]"),
    ("{'authorization': 'Basic dXNlcjpzM2NyZXQ='}", "{'authorization': 'Basic [redacted]'}"),
    ("x-api-key: abc123def", "x-api-key: [redacted]"),
    ("GET /v1/x?api_key=abc123&y=1", "GET /v1/x?api_key=[redacted]&y=1"),
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_[redacted]"),
    ("host=db password='s3 cret' user=x", "host=db password=[redacted] user=x"),
    ("{'password': 's3cret'}", "{'password': [redacted]}"),
    ("nats://u:p@ss@host:4222", "nats://u:[redacted]@host:4222"),
])
def test_secrets_never_reach_a_log_line(secret, shown):
    assert logs.redact(f"x {secret} y") == f"x {shown} y"


def test_a_json_line_is_one_object_with_the_request_id_and_tenant_and_no_secret():
    handler_filter = logs._Context()
    tokens = logs.REQUEST_ID.set("req-1"), logs.TENANT.set("acme")
    try:
        record = _record("refused key %s", TOKEN)
        handler_filter.filter(record)
    finally:
        logs.REQUEST_ID.reset(tokens[0])
        logs.TENANT.reset(tokens[1])
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line and TOKEN not in line
    parsed = json.loads(line)
    assert parsed["request_id"] == "req-1" and parsed["tenant"] == "acme"
    assert parsed["level"] == "WARNING" and parsed["message"] == "refused key idl_[redacted]"


def test_a_traceback_is_redacted_too():
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        import sys

        record = _record("failed", exc_info=sys.exc_info())
    logs._Context().filter(record)
    assert TOKEN not in logs.JsonFormatter().format(record)
    assert TOKEN not in logs.TextFormatter().format(record)


def test_settings_for_operations_are_read_and_checked():
    settings = Settings.from_env({"INDELIBLE_FULL_VERIFY_INTERVAL": "60",
                                  "INDELIBLE_METRICS_LISTEN": "127.0.0.1:9464",
                                  "INDELIBLE_LOG_FORMAT": "json",
                                  "INDELIBLE_CONTINUOUS_VERIFY": "false"})
    assert (settings.full_verify_interval, settings.metrics_listen, settings.log_format,
            settings.continuous_verify) == (60.0, "127.0.0.1:9464", "json", False)
    assert Settings.from_env({}).continuous_verify is True
    with pytest.raises(ConfigError, match="INDELIBLE_METRICS_LISTEN='localhost' is not host:port"):
        Settings.from_env({"INDELIBLE_METRICS_LISTEN": "localhost"})
    with pytest.raises(ConfigError, match="INDELIBLE_LOG_FORMAT='yaml' is not one of"):
        Settings.from_env({"INDELIBLE_LOG_FORMAT": "yaml"})
    with pytest.raises(ConfigError, match="INDELIBLE_FULL_VERIFY_INTERVAL='0' must be"):
        Settings.from_env({"INDELIBLE_FULL_VERIFY_INTERVAL": "0"})


def test_full_runs_are_spread_over_the_interval_and_fixed_per_tenant():
    starts = [spread(f"tenant-{i}", 1000.0) for i in range(200)]
    assert all(100.0 <= s <= 1000.0 for s in starts)
    assert max(starts) - min(starts) > 700  # not all at once
    assert spread("acme", 1000.0) == spread("acme", 1000.0)


def _alarm(seq, check="leaf_hash", seq_end=None) -> Alarm:
    return Alarm("acme", check, "changed", seq, seq_end, "incremental", "2026-11-30T00:00:00Z")


def test_an_alarm_is_raised_once_recorded_outside_the_database_and_told_to_subscribers(tmp_path):
    alarms = IntegrityAlarms(AlarmBook(tmp_path / "alarms.jsonl"))
    told = []
    alarms.subscribe(told.append)
    assert alarms.problem() is None
    assert alarms.raise_alarm(_alarm(7)) and not alarms.raise_alarm(_alarm(7))
    alarms.raise_alarm(_alarm(None, "log_head"))
    assert alarms.book.read() == [_alarm(7), _alarm(None, "log_head")] == told
    assert (tmp_path / "alarms.jsonl").stat().st_mode & 0o777 == 0o600
    component, detail = alarms.problem()
    assert component == "integrity"
    assert detail == ("degraded: seq 7 of a tenant's log failed the leaf_hash check; 2 alarms "
                      "in all (see the INTEGRITY ALARM log lines)")
    assert "acme" not in detail  # /readyz is public
    assert metrics.INTEGRITY_OK.labels("acme")._value.get() == 0


def test_a_new_metric_is_one_line_and_appears_in_the_scrape():
    seen = metrics.counter("indelible_test_things_seen", "Things a test saw", ["tenant"])
    seen.labels("acme").inc(3)
    assert b'indelible_test_things_seen_total{tenant="acme"} 3.0' in metrics.render()


def test_alarms_in_the_book_still_stand_after_a_restart(tmp_path):
    # A verified tail deleted and the head rewritten to match is consistent in itself: a
    # restart's re-verification does not find it again, so the book must keep it standing.
    book = AlarmBook(tmp_path / "alarms.jsonl")
    IntegrityAlarms(book).raise_alarm(_alarm(7, "seq"))
    with book.path.open("a") as f:
        f.write("not json\n")  # a torn line must not stop the service from starting
    restarted = IntegrityAlarms(book)
    assert [a.seq for a in restarted.raised("acme")] == [7]
    assert restarted.problem()[0] == "integrity"
    assert not restarted.raise_alarm(_alarm(7, "seq"))  # not raised twice
