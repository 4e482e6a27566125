"""Benchmarks: `indelible bench append|verify` (see benchmarks/ for what they measure)."""

from __future__ import annotations

import click

from indelible.cli.root import main


@main.group()
def bench() -> None:
    """Measure the ledger against raw PostgreSQL in the same run."""
