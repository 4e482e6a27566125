"""The `indelible` command line."""

# Each module registers its commands on `main`.
from indelible.cli import audit, bench, engines, escalation, ingest, service, tenants  # noqa: F401
from indelible.cli import outbox  # noqa: F401
from indelible.cli import reports  # noqa: F401
from indelible.cli import witness  # noqa: F401
from indelible.cli import bundles  # noqa: F401
from indelible.cli.root import main

__all__ = ["main"]
