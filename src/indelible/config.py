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
class Integration:
    """One outbound integration (issue 12): where its webhooks go and the secrets that sign
    them, newest first (during a rotation every request carries a signature by each)."""

    name: str  # "hub" (Notification Hub) or "rag" (RAG feed)
    url: str
    secrets: tuple[str, ...]  # "whsec_<base64>"


@dataclass(frozen=True)
class OutboundSettings:
    """The outbound integrations; both off by default, so nothing is queued for them."""

    hub: Integration | None = None  # INDELIBLE_NOTIFICATION_HUB_ENABLED/_URL/_SECRET
    rag: Integration | None = None  # INDELIBLE_RAG_FEED_ENABLED/_URL/_SECRET
    timeout: float = 10.0  # seconds a receiver gets to answer one request
    concurrency: int = 4  # requests in flight per integration
    # seconds before attempt 1, 2, ...: immediately, then backoff to 10 h; jittered ±20 %
    schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    poll: float = 2.0  # seconds between looks at the queue when nothing woke the dispatcher
    public_url: str = "http://127.0.0.1:8080"  # links in hub events point here

    @property
    def enabled(self) -> tuple[Integration, ...]:
        return tuple(i for i in (self.hub, self.rag) if i is not None)

    @classmethod
    def from_env(cls, env) -> OutboundSettings:
        schedule = env.get("INDELIBLE_OUTBOX_RETRY_SCHEDULE")
        return cls(
            hub=_integration(env, "hub", "INDELIBLE_NOTIFICATION_HUB"),
            rag=_integration(env, "rag", "INDELIBLE_RAG_FEED"),
            timeout=_number(env, "INDELIBLE_OUTBOX_TIMEOUT", cls.timeout, float),
            concurrency=_number(env, "INDELIBLE_OUTBOX_CONCURRENCY", cls.concurrency, int),
            schedule=_schedule(schedule) if schedule else cls.schedule,
            poll=_number(env, "INDELIBLE_OUTBOX_POLL", cls.poll, float),
            public_url=(env.get("INDELIBLE_PUBLIC_URL") or cls.public_url).rstrip("/"),
        )


def _integration(env, name: str, prefix: str) -> Integration | None:
    if not _flag(env, f"{prefix}_ENABLED", False):
        return None
    url, secret = env.get(f"{prefix}_URL") or "", env.get(f"{prefix}_SECRET") or ""
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{prefix}_ENABLED is true, so {prefix}_URL must be an http(s) URL; "
                          f"got {url!r}")
    secrets = tuple(secret.split())
    if not secrets:
        raise ConfigError(f"{prefix}_ENABLED is true, so {prefix}_SECRET must hold a signing "
                          "secret (whsec_<base64>; several, space-separated, while rotating)")
    from indelible.outbound.webhooks import SecretError, secret_bytes

    for text in secrets:
        try:
            secret_bytes(text)
        except SecretError as e:
            raise ConfigError(f"{prefix}_SECRET: {e}") from e
    return Integration(name, url, secrets)


def _schedule(raw: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in raw.replace(",", " ").split())
    except ValueError as e:
        raise ConfigError(f"INDELIBLE_OUTBOX_RETRY_SCHEDULE={raw!r} is not a list of seconds") from e
    if not delays or any(d < 0 for d in delays):
        raise ConfigError(f"INDELIBLE_OUTBOX_RETRY_SCHEDULE={raw!r} must list at least one "
                          "delay, none negative (seconds before attempt 1, 2, ...)")
    return delays


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
    continuous_verify: bool = True  # re-read and check every new entry, inside `indelible up`
    full_verify_interval: float = 86_400.0  # seconds between full verifications of each tenant
    verify_recent_entries: int = 1_000  # per tenant, the newest entries re-read every 2 s
    metrics_listen: str | None = None  # "host:port": /metrics without authentication there
    metrics_public: bool = False  # also serve /metrics on the API port without authentication
    log_format: str = "text"  # text | json (one JSON object per line)
    outbound: OutboundSettings = OutboundSettings()  # Notification Hub, RAG feed (issue 12)
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
    def alarm_file(self) -> Path:
        """Integrity alarms, kept beside the key (outside the database they are about)."""
        return self.key_file.parent / "integrity-alarms.jsonl"

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
            continuous_verify=_flag(env, "INDELIBLE_CONTINUOUS_VERIFY", cls.continuous_verify),
            full_verify_interval=_number(env, "INDELIBLE_FULL_VERIFY_INTERVAL",
                                         cls.full_verify_interval, float),
            verify_recent_entries=_number(env, "INDELIBLE_VERIFY_RECENT_ENTRIES",
                                          cls.verify_recent_entries, int, minimum=0),
            metrics_listen=_listen(env, "INDELIBLE_METRICS_LISTEN"),
            metrics_public=_flag(env, "INDELIBLE_METRICS_PUBLIC", cls.metrics_public),
            log_format=log_format(env),
            outbound=OutboundSettings.from_env(env),
            key_cache_ttl=_number(env, "INDELIBLE_KEY_CACHE_TTL", cls.key_cache_ttl, float,
                                  minimum=0),
            **_tsa(env),
            console_idle_timeout=_number(env, "INDELIBLE_CONSOLE_IDLE_TIMEOUT",
                                         cls.console_idle_timeout, float, minimum=1),
            console_session_lifetime=_number(env, "INDELIBLE_CONSOLE_SESSION_LIFETIME",
                                             cls.console_session_lifetime, float, minimum=1),
        )


def log_format(env=None) -> str:
    """INDELIBLE_LOG_FORMAT: read apart from Settings too, since logging starts before them."""
    env = os.environ if env is None else env
    raw = (env.get("INDELIBLE_LOG_FORMAT") or "text").strip().lower()
    if raw not in ("text", "json"):
        raise ConfigError(f"INDELIBLE_LOG_FORMAT={raw!r} is not one of: text, json")
    return raw


def _listen(env, name: str) -> str | None:
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={raw!r} is not host:port (e.g. 127.0.0.1:9464)")
    return raw


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
