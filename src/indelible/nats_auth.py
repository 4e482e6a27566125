"""Who may talk to the embedded nats-server: nkeys (Ed25519), NATS's own mechanism.

The server's config holds only public keys; a seed (the private key) is shown or stored once,
by whoever holds it. Two kinds of users:
- the service user (seed in `<store_dir>/service.nk`, mode 0600): every right; the ingestion
  consumer, `indelible simulate`, `dlq list|replay`;
- engine users, one per credential `indelible engine-credentials create --tenant T` issues:
  may publish only to `<prefix>.<T>`, and receive only on their own inbox prefix
  `_INBOX_ENGINE.<T>.>` (where JetStream's publish acknowledgements arrive). Not `_INBOX.>`:
  the ingestion consumer's pull deliveries arrive there, every tenant's messages.
Files in `store_dir`: service.nk, engines.json (the credentials issued, public keys only) and
nats-server.conf (generated from both), all mode 0600.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from indelible.secret_files import SecretFileError, read_private, write_private

SERVICE_SEED, ENGINES, CONFIG = "service.nk", "engines.json", "nats-server.conf"
ENGINE_INBOX = "_INBOX_ENGINE"


@dataclass(frozen=True)
class NatsAccess:
    """Where the broker is and, if it asks for one, the nkey seed file to answer with.

    `url` may name several servers of one cluster, comma-separated
    (`nats://a:4222,nats://b:4222`): the client connects to one and fails over to the others
    (and to those the cluster tells it about)."""

    url: str
    seed_file: Path | None = None

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    async def connect(self, **options):
        import nats

        seed = str(self.seed_file) if self.seed_file else None
        return await nats.connect(self.servers, nkeys_seed=seed, **options)


@dataclass(frozen=True)
class EngineCredential:
    public_key: str  # the nkey user ("U..."); the seed is never kept
    tenant: str
    name: str
    subject: str  # the only subject it may publish to
    inbox_prefix: str  # what the engine passes as its client's inbox prefix
    issued_at: str  # RFC 3339


def new_user_seed() -> tuple[str, str]:
    """(seed "SU...", public key "U...") of a fresh nkey user."""
    import nkeys

    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode(), nkeys.from_seed(bytearray(seed)).public_key.decode()


def public_key_of(seed: str) -> str:
    import nkeys

    try:
        return nkeys.from_seed(bytearray(seed.strip().encode())).public_key.decode()
    except (nkeys.NkeysError, ValueError) as e:
        raise SecretFileError(f"not an nkey seed: {type(e).__name__}") from e


def service_seed_file(store_dir: Path) -> Path:
    """The service user's seed, created on first use (the first writer wins a race)."""
    path = store_dir / SERVICE_SEED
    if not path.exists():
        write_private(path, new_user_seed()[0] + "\n", exclusive=True)
    return path


def engines(store_dir: Path) -> list[EngineCredential]:
    path = store_dir / ENGINES
    if not path.exists():
        return []
    return [EngineCredential(**e) for e in json.loads(read_private(path))]


def engine_credential(store_dir: Path, *, tenant: str, name: str,
                      prefix: str) -> tuple[str, EngineCredential]:
    """(seed, credential): a new engine user for `tenant`, added to engines.json."""
    seed, public = new_user_seed()
    credential = EngineCredential(
        public_key=public, tenant=tenant, name=name, subject=f"{prefix}.{tenant}",
        inbox_prefix=f"{ENGINE_INBOX}.{tenant}",
        issued_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with _engines_locked(store_dir):
        _save(store_dir, [*engines(store_dir), credential])
    return seed, credential


def remove_engine(store_dir: Path, public_key: str) -> EngineCredential | None:
    """Drop the credential from engines.json; None if it is not there."""
    with _engines_locked(store_dir):
        kept, removed = [], None
        for e in engines(store_dir):
            if e.public_key == public_key:
                removed = e
            else:
                kept.append(e)
        if removed is not None:
            _save(store_dir, kept)
    return removed


@contextmanager
def _engines_locked(store_dir: Path) -> Iterator[None]:
    """Read-modify-write of engines.json, one process at a time: a `create` racing a
    `revoke` must not write back a list that resurrects the revoked credential."""
    store_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(store_dir / ".engines.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _save(store_dir: Path, credentials: list[EngineCredential]) -> None:
    write_private(store_dir / ENGINES, json.dumps([asdict(e) for e in credentials], indent=2))


def write_server_config(store_dir: Path) -> Path:
    """nats-server.conf from the service key and engines.json: no user, no entry."""
    service = public_key_of(read_private(service_seed_file(store_dir)))
    users = [f"    {{nkey: {json.dumps(service)}}}  # the indelible service: every right"]
    for e in engines(store_dir):
        users.append(
            f"    {{nkey: {json.dumps(e.public_key)}, permissions: {{"
            f"publish: {{allow: [{json.dumps(e.subject)}]}}, "
            f"subscribe: {{allow: [{json.dumps(e.inbox_prefix + '.>')}]}}}}}}"
            f"  # engine of {e.tenant}: {json.dumps(e.name)}")
    text = ("# Generated by indelible from service.nk and engines.json; edits are overwritten.\n"
            "authorization {\n  users = [\n" + "\n".join(users) + "\n  ]\n}\n")
    path = store_dir / CONFIG
    write_private(path, text)
    return path
