"""The service's log lines: readable on a terminal, or one JSON object per line.

`INDELIBLE_LOG_FORMAT=json` gives each record as {"time", "level", "logger", "message",
"request_id", "tenant", "exception"} (the last three when known): what a log shipper
indexes without parsing. Lines written while an HTTP request is served carry its request id
and, once its API key is known, its tenant (context variables, set by api/observe.py and
the request guard, so they follow the request into worker threads).

Nothing secret reaches a line, whatever a message or a traceback contains: API keys
(`idl_…`), bearer credentials, passwords in connection strings and nkey seeds are replaced
by `[redacted]` in the formatter, the one place every line passes through.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import datetime, timezone

REQUEST_ID: ContextVar[str | None] = ContextVar("indelible_request_id", default=None)
TENANT: ContextVar[str | None] = ContextVar("indelible_tenant", default=None)

_SECRETS = (
    (re.compile(r"idl_[A-Za-z0-9_-]+"), "idl_[redacted]"),  # API keys
    (re.compile(r"(?i)\b(bearer\s+)[^\s'\"]+"), r"\1[redacted]"),
    # Any Authorization header value (Basic, a bare key...), as a line or a headers repr.
    (re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:[a-z]+\s+)?)"
                r"[^\s'\",}]+"), r"\1[redacted]"),
    (re.compile(r"(?i)\b(x-api-key[\"']?\s*[:=]\s*[\"']?)[^\s'\",}]+"), r"\1[redacted]"),
    # Credentials in a query string.
    (re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|secret|password|signature)=)"
                r"[^&\s'\"#]+"), r"\1[redacted]"),
    # libpq quotes values with spaces ('…'); a dict repr quotes its key ('password': …).
    (re.compile(r"(?i)\b(password[\"']?\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s&'\"]+)"),
     r"\1[redacted]"),
    (re.compile(r"(://[^:/@\s]+:)\S+@"), r"\1[redacted]@"),  # user:password@host (to the last @)
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_[redacted]"),  # webhook signing secrets
    (re.compile(r"\bS[UAO][A-Z2-7]{50,}\b"), "[redacted nkey seed]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.tenant = TENANT.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": redact(record.getMessage())}
        for field in ("request_id", "tenant"):
            if getattr(record, field, None):
                line[field] = getattr(record, field)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{k}={v}" for k, v in (("request", getattr(record, "request_id", None)),
                                                   ("tenant", getattr(record, "tenant", None))) if v)
        if context:
            first, _, rest = text.partition("\n")
            text = f"{first} [{context}]" + (f"\n{rest}" if rest else "")
        return redact(text)


def configure(*, level: int, format: str = "text") -> None:
    """Replace the root handlers with one on stderr in `format` (text | json)."""
    handler = logging.StreamHandler()
    handler.addFilter(_Context())
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
