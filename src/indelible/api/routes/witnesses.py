"""Which witnesses have cosigned a tenant's latest checkpoint: absence is visible."""

from __future__ import annotations

from fastapi import APIRouter

from indelible.api.context import Caller, State
from indelible.api.routes.audit import NOT_FOUND, Tenant, _own
from indelible.audit import NotFoundError, current_checkpoint
from indelible.store.cosignatures import latest_cosigned

router = APIRouter(tags=["auditor"])


def _cosigned(conn, tenant: str, keys: list[str]) -> tuple[int | None, dict]:
    try:
        size = current_checkpoint(conn, tenant).size
    except NotFoundError:
        size = None
    return size, {k: latest_cosigned(conn, tenant, k) for k in keys}


@router.get("/v1/logs/{tenant}/witnesses", responses=NOT_FOUND)
async def witnesses(tenant: Tenant, caller: Caller, state: State) -> dict:
    """Per configured witness: the largest checkpoint it cosigned, and whether the latest
    checkpoint still lacks its cosignature (with the witness's last error, if any)."""
    keys = [s.witness.key_text for s in state.witnesses]
    size, latest = await state.read(_own(tenant, caller), _cosigned, tenant, keys)
    rows = []
    for status in state.witnesses:
        row = latest[status.witness.key_text]
        rows.append({
            "name": status.witness.name, "key": status.witness.key_text,
            "url": status.witness.url,
            "cosigned_size": row.size if row else None,
            "cosigned_at": row.cosigned_at.isoformat() if row else None,
            "missing": size is not None and (row is None or row.size < size),
            "reachable": status.up, "last_error": status.last_error})
    return {"tenant": tenant, "checkpoint_size": size,
            "cosigned_by": sum(1 for r in rows if not r["missing"] and size is not None),
            "witnesses": rows}
