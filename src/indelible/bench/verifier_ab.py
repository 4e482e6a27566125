"""What continuous verification costs the append path: the same workload with the verifier
off (baseline) and on (ours), in one run, and how far the verifier trails the head.

`indelible bench append --verifier-ab` runs the group-commit measurement again with the
service's verifier process following the database (as `indelible up` runs it);
`indelible bench api --verifier-ab` walks the lifecycle against `indelible up` started with
INDELIBLE_CONTINUOUS_VERIFY=false, then true. The target: ours ≥ 0.9 × baseline.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from indelible.bench.common import BenchError, Measurement

TARGET_RATIO = 0.9  # with verification on / off
CATCH_UP_TIMEOUT = 1800.0  # seconds the verifier may take to read an existing database


class FollowingVerifier:
    """The service's verifier process on the bench's database, its lag sampled every 0.1 s.

    Entering waits until it has read every log already there, so the measured run pays for
    following new entries, not for a first pass over earlier benchmarks' logs."""

    def __init__(self, conninfo: str, key_text: str, tenant: str):
        import psycopg

        self.tenant = tenant
        self._conn = psycopg.connect(conninfo, autocommit=True)  # the head, as it is now
        from indelible.monitor.service import ContinuousVerification, VerificationConfig

        self._tmp = tempfile.TemporaryDirectory(prefix="indelible-bench-alarms-")
        self.verification = ContinuousVerification(VerificationConfig(
            conninfo=conninfo, key_text=key_text,
            alarm_file=Path(self._tmp.name) / "alarms.jsonl", full_interval=0),
            appender=None)
        self.catch_up_seconds = 0.0
        self.max_lag = 0
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def lags(self) -> dict[str, int]:
        """Entries committed but not yet read by the verifier, per tenant, right now."""
        progress = self.verification.progress()
        heads = dict(self._conn.execute("SELECT tenant_id, size FROM log_heads").fetchall())
        return {t: max(0, heads.get(t, 0) - p["verified"]) for t, p in progress.items()}

    def __enter__(self) -> FollowingVerifier:
        self.verification.start()
        started = time.monotonic()
        while not self.verification.progress() or any(self.lags().values()):
            if time.monotonic() - started > CATCH_UP_TIMEOUT:
                raise BenchError("the verifier did not catch up with the database in time")
            time.sleep(0.2)
        self.catch_up_seconds = time.monotonic() - started
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._sampling.wait(0.1):
            self.max_lag = max(self.max_lag, self.lags().get(self.tenant, 0))

    def drain_seconds(self, timeout: float = 600) -> float:
        """Seconds, after the run, until the verifier has read everything."""
        started = time.monotonic()
        time.sleep(0.3)  # a progress report that includes the last commit
        while any(self.lags().values()) and time.monotonic() - started < timeout:
            time.sleep(0.05)
        return time.monotonic() - started

    def __exit__(self, *exc) -> None:
        self._sampling.set()
        self._sampler.join()
        self.verification.stop()
        self._conn.close()
        problems = self.verification.alarms.raised()
        self._tmp.cleanup()
        if problems:
            raise BenchError(f"the verifier raised alarms during the run: {problems[0].describe()}")


def comparison(name: str, title: str, unit: str, off: dict, on: dict, what: str,
               details: dict) -> Measurement:
    """Off is the baseline, on is ours; rates carry the target (latencies are reported)."""
    rated = "rate" in on
    return Measurement(name, title, unit, off, on, f"{what}, continuous verification off",
                       f"{what}, continuous verification on",
                       f"ratio ≥ {TARGET_RATIO}" if rated else None,
                       on["rate"] / off["rate"] >= TARGET_RATIO if rated else None, details)
