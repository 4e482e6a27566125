"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indelible.audit import NotFoundError
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


def problem_responses(*statuses: int) -> dict:
    """OpenAPI documentation of the problem responses a route can give."""
    titles = {400: "Bad request", 401: "No valid API key", 403: "Role not allowed",
              404: "Not found in this tenant", 409: "Refused in the current state",
              413: "Too large", 422: "Invalid request", 503: "Storage unavailable"}
    return {code: {"description": titles[code], "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
            for code in statuses}


class ProblemError(Exception):
    """Raised by handlers to answer with an RFC 9457 problem."""

    def __init__(self, status: int, title: str, detail: str, **extra):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(status: int, title: str, detail: str, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


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
    async def invalid_request(_: Request, e: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in err["loc"]), "rule": err["msg"]}
                  for err in e.errors()]
        detail = "; ".join(f"{x['field']}: {x['rule']}" for x in errors[:5])
        return problem(422, "Invalid request", detail, errors=errors)

    @app.exception_handler(AppendRefusedError)
    async def refused(_: Request, e: AppendRefusedError):
        if isinstance(e, InvalidEntryError):
            return problem(422, "Invalid request", str(e))
        if isinstance(e, IdempotencyConflictError):
            return problem(409, "Idempotency-Key reused", str(e))
        return problem(409, "Refused", str(e))

    @app.exception_handler(UnknownLogError)
    async def unknown_log(_: Request, e: UnknownLogError):
        return problem(404, "Unknown tenant", str(e), tenant=e.tenant)

    @app.exception_handler(InvalidTenantError)
    async def invalid_tenant(_: Request, e: InvalidTenantError):
        return problem(422, "Invalid tenant", str(e))

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, e: NotFoundError):
        return problem(404, "Not found", str(e))

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, e: StoreUnavailableError):
        return problem(503, "Storage unavailable", str(e))
