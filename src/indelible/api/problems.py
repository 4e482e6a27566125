"""RFC 9457 problem details: the one place errors become HTTP responses.

Every refusal is `application/problem+json` with `type`, `title`, `status` and `detail`;
members beyond these name what was refused.

Field paths. A problem about particular inputs carries `errors`, a list of
`{"field": …, "rule": …}`, and its `detail` starts with the same `field: rule`. Every field
path starts with where the input was sent, then the dotted path inside it:
  body.currency, body.thresholds.USD.high, body.transaction_refs.2 (array items by index)
  query.as_of, path.discrepancy_id, header.Idempotency-Key, header.Content-Type
`body` alone is the body as a whole (not JSON, or missing). This is the shape FastAPI's own
validation gives; a domain refusal (`InvalidCommandError.field`, which knows nothing of
HTTP) is put under its location by `invalid_command`, so one request never names the same
input two ways.

Statuses the API gives, whatever the route: 400 for a body that is not JSON, 415 for a JSON
route sent another media type, 422 for input that breaks a rule; and, outside the public
paths, 401 without a valid key, 413 for a body over the route's limit, 503 when storage does
not answer (api/guard.py, before any route runs). api/openapi.py adds these to every
operation of the OpenAPI document they apply to; routes declare only their own (403, 404,
409, and 422 when a handler refuses a value the schema admits).
"""

from __future__ import annotations

import email.message
from collections.abc import Mapping
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indelible.audit import NotFoundError
from indelible.domain import InvalidCommandError
from indelible.store.errors import (AppendRefusedError, IdempotencyConflictError,
                                    InvalidEntryError, StoreUnavailableError, UnknownLogError)
from indelible.store.logs import InvalidTenantError

PROBLEM_JSON = "application/problem+json"


# RFC 9457 problem details; members beyond these name what was refused.
PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"}},
    "additionalProperties": True,
}
TITLES = {400: "Malformed request body", 401: "No valid API key", 403: "Role not allowed",
          404: "Not found in this tenant", 409: "Refused in the current state",
          413: "Too large", 415: "Unsupported media type", 422: "Invalid request",
          503: "Storage unavailable"}


def problem_responses(*statuses: int) -> dict:
    """OpenAPI documentation of the problem responses a route can give."""
    return {code: {"description": TITLES[code], "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
            for code in statuses}


class ProblemError(Exception):
    """Raised by handlers to answer with an RFC 9457 problem."""

    def __init__(self, status: int, title: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def invalid(*errors: tuple[str, str], status: int = 422, title: str = "Invalid request",
            **extra) -> ProblemError:
    """A refusal naming each (field path, rule); see the module docstring for the paths."""
    return ProblemError(status, title, "; ".join(f"{field}: {rule}" for field, rule in errors[:5]),
                        errors=[{"field": field, "rule": rule} for field, rule in errors], **extra)


def invalid_command(e: InvalidCommandError, where: Mapping[str, str] | None = None) -> ProblemError:
    """A domain command's refusal, its field placed under the request location it came
    from: `where` maps a command field to its path (default `body.<field>`)."""
    head, dot, rest = e.field.partition(".")
    path = (where or {}).get(head, f"body.{head}")
    return invalid((path + dot + rest, e.rule))


def unknown_log(tenant: str) -> ProblemError:
    """The same answer for a tenant that does not exist and for one the key may not see,
    so a key learns nothing about other tenants."""
    return ProblemError(404, "Unknown tenant",
                        f"no log named {tenant!r} is visible to this API key", tenant=tenant)


def is_json(content_type: str | None) -> bool:
    """The media types FastAPI parses as JSON: application/json and application/*+json."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and \
        (subtype == "json" or subtype.endswith("+json"))


async def json_body(request: Request) -> None:
    """An app-wide dependency: a route that takes a JSON body refuses any other media type
    (415) instead of failing it as a shape error. It runs after the guard authenticated
    (401 first) and before the route's own dependencies and validation."""
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return  # no JSON body (the evidence upload takes any media type: it is the file's)
    sent = request.headers.get("content-type")
    if not is_json(sent):
        got = f"it was sent as {sent!r}" if sent else "it was sent without a Content-Type"
        raise invalid(("header.Content-Type", f"this route takes a JSON body: send it as "
                       f"application/json ({got})"), status=415, title="Unsupported media type")


def problem(status: int, title: str, detail: str, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc)


def _validation_problem(e: RequestValidationError) -> ProblemError:
    errors = e.errors()
    for error in errors:
        if error["type"] == "json_invalid":  # FastAPI's loc is ("body", character offset)
            reason = (error.get("ctx") or {}).get("error", "not JSON")
            offset = error["loc"][1] if len(error["loc"]) > 1 else 0
            return invalid(("body", f"not valid JSON: {reason} at character {offset}"),
                           status=400, title="Malformed JSON")
    return invalid(*((_field(err["loc"]), err["msg"]) for err in errors))


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def raised(_: Request, e: ProblemError):
        headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
        response = problem(e.status, e.title, e.detail, **e.extra)
        if headers:
            response.headers.update(headers)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException):
        title = HTTPStatus(e.status_code).phrase if e.status_code in HTTPStatus._value2member_map_ else "Error"
        response = problem(e.status_code, title, str(e.detail))
        response.headers.update(e.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, e: RequestValidationError):
        return await raised(request, _validation_problem(e))

    @app.exception_handler(AppendRefusedError)
    async def refused(_: Request, e: AppendRefusedError):
        if isinstance(e, InvalidEntryError):
            return problem(422, "Invalid request", str(e))
        if isinstance(e, IdempotencyConflictError):
            return problem(409, "Idempotency-Key reused", str(e))
        return problem(409, "Refused", str(e))

    @app.exception_handler(UnknownLogError)
    async def unknown_log_error(request: Request, e: UnknownLogError):
        return await raised(request, unknown_log(e.tenant))

    @app.exception_handler(InvalidTenantError)
    async def invalid_tenant(_: Request, e: InvalidTenantError):
        return problem(422, "Invalid tenant", str(e))

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, e: NotFoundError):
        return problem(404, "Not found", str(e))

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, e: StoreUnavailableError):
        return problem(503, "Storage unavailable", str(e))

    @app.exception_handler(TimeoutError)
    async def not_committed_in_time(_: Request, e: TimeoutError):
        # Raised by usecases' Ledger when the appender did not answer in time: the entry may
        # still commit, so the retry must carry the same idempotency key.
        return problem(503, "Storage unavailable", "the ledger did not commit in time; retry "
                       "with the same Idempotency-Key")
