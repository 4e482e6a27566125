"""Settings: the only place environment variables are read.

Every knob has a default that works on a fresh machine; `Settings.from_env()` is called by
the composition root (`bootstrap.py`) and the CLI, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "indelible"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None  # None: start the embedded PostgreSQL in data_dir
    app_database_url: str | None = None  # how the service role logs in, if not as the owner's host with trust
    api_database_url: str | None = None  # how request handlers log in, likewise
    nats_url: str | None = None  # None: start the embedded nats-server in data_dir
    nats_seed_file: Path | None = None  # nkey seed the service answers INDELIBLE_NATS_URL's server with
    ingest_enabled: bool = True  # consume reconciliation messages from NATS JetStream
    subject_prefix: str = "recon.discrepancies"  # engines publish to "<prefix>.<tenant>"
    base_origin: str = "indelible.local/log"  # checkpoint origin is "<base_origin>/<tenant>"
    signing_key_file: Path | None = None  # None: <data_dir>/signing.key, generated on first start
    checkpoint_interval: float = 5.0  # seconds between checkpointer passes
    checkpoint_entries: int = 10_000  # sign early once this many entries are unsigned
    batch_max: int = 2_000  # commands per group commit
    escalation_enabled: bool = True  # run the escalation engine inside `indelible up`
    escalation_interval: float = 900.0  # seconds between escalation passes at the latest
    batch_wait: float = 0.0  # seconds a lone command waits for company (0: commit at once)
    witnesses_file: Path | None = None  # `<witness verifier key> <URL prefix>` per line
    # Serve even though row-level security cannot hold the request role to one tenant
    # (a managed server that would not grant BYPASSRLS); see store/isolation.py.
    accept_weak_isolation: bool = False
    key_cache_ttl: float = 10.0  # seconds a process remembers an authenticated key (0: never)
    tsa_url: str | None = None  # RFC 3161 Time Stamping Authority; None: checkpoints undated
    tsa_ca_file: Path | None = None  # PEM: the TSA's CA certificate(s) its tokens must chain to
    tsa_timeout: float = 10.0  # seconds per TSA request
    console_idle_timeout: float = 1800.0  # seconds without a page view before a console session ends
    console_session_lifetime: float = 43200.0  # seconds after sign-in a console session ends regardless

    @property
    def key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing.key"

    @property
    def kept_dir(self) -> Path:
        """The last checkpoint signed per tenant, kept beside the key (outside the database)."""
        return self.key_file.parent / "signed-checkpoints"

    @property
    def key_name(self) -> str:
        return self.base_origin

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        key_file = env.get("INDELIBLE_SIGNING_KEY_FILE")
        seed_file = env.get("INDELIBLE_NATS_SEED_FILE")
        witnesses = env.get("INDELIBLE_WITNESSES")
        return cls(
            data_dir=Path(env.get("INDELIBLE_DATA_DIR") or _default_data_dir()).expanduser(),
            database_url=env.get("INDELIBLE_DATABASE_URL") or None,
            app_database_url=env.get("INDELIBLE_APP_DATABASE_URL") or None,
            api_database_url=env.get("INDELIBLE_API_DATABASE_URL") or None,
            nats_url=env.get("INDELIBLE_NATS_URL") or None,
            nats_seed_file=Path(seed_file).expanduser() if seed_file else None,
            ingest_enabled=_flag(env, "INDELIBLE_INGEST_ENABLED", cls.ingest_enabled),
            subject_prefix=env.get("INDELIBLE_SUBJECT_PREFIX") or cls.subject_prefix,
            base_origin=env.get("INDELIBLE_ORIGIN", cls.base_origin),
            signing_key_file=Path(key_file).expanduser() if key_file else None,
            checkpoint_interval=_number(env, "INDELIBLE_CHECKPOINT_INTERVAL", cls.checkpoint_interval, float),
            checkpoint_entries=_number(env, "INDELIBLE_CHECKPOINT_ENTRIES", cls.checkpoint_entries, int),
            batch_max=_number(env, "INDELIBLE_BATCH_MAX", cls.batch_max, int),
            escalation_enabled=_flag(env, "INDELIBLE_ESCALATION_ENABLED", cls.escalation_enabled),
            escalation_interval=_number(env, "INDELIBLE_ESCALATION_INTERVAL",
                                        cls.escalation_interval, float),
            batch_wait=_number(env, "INDELIBLE_BATCH_WAIT_MS", cls.batch_wait * 1000, float,
                               minimum=0) / 1000,
            witnesses_file=Path(witnesses).expanduser() if witnesses else None,
            accept_weak_isolation=_flag(env, "INDELIBLE_ACCEPT_WEAK_TENANT_ISOLATION",
                                        cls.accept_weak_isolation),
            key_cache_ttl=_number(env, "INDELIBLE_KEY_CACHE_TTL", cls.key_cache_ttl, float,
                                  minimum=0),
            **_tsa(env),
            console_idle_timeout=_number(env, "INDELIBLE_CONSOLE_IDLE_TIMEOUT",
                                         cls.console_idle_timeout, float, minimum=1),
            console_session_lifetime=_number(env, "INDELIBLE_CONSOLE_SESSION_LIFETIME",
                                             cls.console_session_lifetime, float, minimum=1),
        )


def _tsa(env) -> dict:
    url = env.get("INDELIBLE_TSA_URL") or None
    ca = env.get("INDELIBLE_TSA_CA_FILE") or None
    if url and not ca:
        raise ConfigError("INDELIBLE_TSA_URL is set but INDELIBLE_TSA_CA_FILE is not: tokens "
                          "must be checked against the TSA's CA certificate before they are kept")
    return {"tsa_url": url, "tsa_ca_file": Path(ca).expanduser() if ca else None,
            "tsa_timeout": _number(env, "INDELIBLE_TSA_TIMEOUT", Settings.tsa_timeout, float)}


def _flag(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")


def _number(env, name: str, default, kind, minimum=None):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError as e:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from e
    if (value < minimum) if minimum is not None else (value <= 0):
        bound = f"at least {minimum}" if minimum is not None else "greater than zero"
        raise ConfigError(f"{name}={raw!r} must be {bound}")
    return value
