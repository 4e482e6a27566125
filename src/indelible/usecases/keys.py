"""API key use cases: issue (the token is returned once, stored only as a hash) and revoke.
Each is a ledger entry; refusals are the store's own errors (`UnknownKeyError`,
`KeyAlreadyRevokedError`, `InvalidKeyRequestError`)."""

from __future__ import annotations

from dataclasses import dataclass

from indelible.store.api_keys import issue_command, revoke_decision
from indelible.store.appender import Appended
from indelible.usecases.principal import Ledger, Principal


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    role: str
    name: str
    token: str  # shown once, never stored
    seq: int


async def issue_key(ledger: Ledger, who: Principal, *, role: str,
                    name: str | None = None) -> IssuedKey:
    token, entry = issue_command(role=role, name=name, by=who.entry_actor())
    issued = await ledger.append(who.tenant, entry)
    return IssuedKey(entry.data["key_id"], role, entry.data["name"], token, issued.seq)


async def revoke_key(ledger: Ledger, who: Principal, key_id: str) -> Appended:
    """The key stops authenticating as soon as this entry commits."""
    return await ledger.append(who.tenant, revoke_decision(key_id, by=who.entry_actor()))
