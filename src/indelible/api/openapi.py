"""The OpenAPI document lists every status an operation can answer, and only those.

Routes declare the refusals that are theirs (403, 404, 409, a handler's own 422). The ones
that follow from where a request passes are added here, by rule, so no route can forget
them: outside the public paths the guard may answer 401, 413 and 503 before the route runs;
an operation taking a JSON body may answer 400 (not JSON) and 415 (another media type); and
one with parameters or a body, 422. FastAPI's own 422 (its `HTTPValidationError` shape,
which this API never sends) is replaced by the problem document it really is.
"""

from __future__ import annotations

from fastapi import FastAPI

from indelible.api.guard import is_public
from indelible.api.problems import problem_responses

GUARDED = (401, 413, 503)
JSON_BODY = (400, 415, 422)
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def install(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            _add_statuses(build())  # build() caches the document in app.openapi_schema
        return app.openapi_schema
    app.openapi = openapi


def _statuses(path: str, operation: dict) -> list[int]:
    statuses = [] if is_public(path) else list(GUARDED)
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        statuses += JSON_BODY
    elif operation.get("parameters") or content:
        statuses.append(422)
    return statuses


def _add_statuses(document: dict) -> None:
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses and "HTTPValidationError" in str(responses["422"]):
                del responses["422"]
            for code, response in problem_responses(*_statuses(path, operation)).items():
                responses.setdefault(str(code), response)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = document.get("components", {}).get("schemas", {})
    if not any(name in str(document.get("paths")) for name in FASTAPI_VALIDATION):
        for name in FASTAPI_VALIDATION:
            schemas.pop(name, None)
