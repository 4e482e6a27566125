"""Fixtures the integration tests share."""

from __future__ import annotations

import pytest

from .ledger_helpers import superuser


@pytest.fixture
def rogue(owner_url):
    """A superuser connection with the append-only triggers off: the insider who edits."""
    with superuser(owner_url) as conn:
        yield conn
