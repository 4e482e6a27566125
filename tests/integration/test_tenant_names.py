"""A tenant name is checked whole before PostgreSQL ever sees it (issue 8, item 9)."""

from __future__ import annotations

import pytest

from indelible.store.logs import InvalidTenantError
from indelible.store.tenants import create_tenant, tenant_exists

pytestmark = pytest.mark.storage


@pytest.mark.parametrize("name", ["acme\n", "acme\r\n", "\nacme", "Acme", "", "a" * 64])
def test_a_malformed_tenant_name_is_refused_with_the_rule_it_breaks(conn, name):
    with pytest.raises(InvalidTenantError, match="is not a valid slug: lowercase letters"):
        create_tenant(conn, name, base_origin="test.indelible.local/log")
    assert not tenant_exists(conn, name.strip())
