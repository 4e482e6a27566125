"""Jinja2 pages: the templates shipped in the package, and the formatting every page shares
(amounts with their currency at its scale, times as <time> elements the console's script
shows in the viewer's zone with UTC on hover)."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from indelible import domain

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def amount(value: object, currency: str) -> str:
    """`1234.5` EUR → `1,234.50 EUR`: the currency's minor units, thousands grouped."""
    try:
        places = domain.minor_units(currency)
        number = Decimal(str(value)).quantize(Decimal(1).scaleb(-places))
    except (InvalidOperation, domain.InvalidCommandError, ValueError):
        return f"{value} {currency}"
    return f"{number:,.{places}f} {currency}"


def when(value: object) -> Markup:
    """A time as <time>: UTC in the text (readable without script), the script localises it."""
    if value is None or value == "":
        return Markup("—")
    moment = value if isinstance(value, datetime) else \
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    moment = moment.astimezone(timezone.utc)
    utc = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    iso = moment.isoformat().replace("+00:00", "Z")
    return Markup(f'<time datetime="{escape(iso)}" title="{escape(utc)}">{escape(utc)}</time>')


def label(value: object) -> str:
    """`auto_closed` → `auto closed`: enum values as words."""
    return str(value or "").replace("_", " ")


TEMPLATES.env.filters.update(amount=amount, when=when, label=label)
def scalars(data: dict) -> list[tuple[str, object]]:
    """The short facts of an entry's data, for the timeline (nested values left out)."""
    return [(k, v) for k, v in data.items()
            if isinstance(v, (str, int, bool)) and k not in {"text", "note", "reason"}
            and len(str(v)) <= 120]


TEMPLATES.env.globals.update(severities=[s.value for s in domain.Severity],
                             statuses=[s.value for s in domain.Status],
                             form_key=lambda: secrets.token_urlsafe(16), scalars=scalars)


def render(request: Request, template: str, *, status_code: int = 200, viewer=None, **context):
    return TEMPLATES.TemplateResponse(request, template, {"viewer": viewer, **context},
                                      status_code=status_code)
