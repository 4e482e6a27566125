"""The `indelible` command line."""

from indelible.cli import audit, bench, engines, ingest, service, tenants  # noqa: F401  (each registers its commands)
from indelible.cli.root import main

__all__ = ["main"]
