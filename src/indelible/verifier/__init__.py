"""Full verification of a tenant's log from the stored bytes (`indelible verify`)."""

from indelible.verifier.report import Finding, VerificationReport
from indelible.verifier.run import verify_log

__all__ = ["Finding", "VerificationReport", "verify_log"]
