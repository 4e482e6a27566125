"""Sign in with a personal API key, sign out."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from indelible.console import security, sessions
from indelible.console.render import render

router = APIRouter()


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None, reason: str | None = None):
    token = security.new_sign_in_token()
    response = render(request, "sign_in.html", csrf_token=token, next=security.safe_next(next),
                      reason=reason if reason in security.SIGN_IN_REASONS else None)
    response.set_cookie(security.SIGN_IN_COOKIE, token, path="/console/sign-in", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.post("/sign-in")
async def sign_in(request: Request, api_key: Annotated[str, Form(max_length=200)] = "",
                  csrf_token: Annotated[str, Form(max_length=200)] = "",
                  next: Annotated[str, Form(max_length=2000)] = "/console/"):
    security.refuse_cross_site(request)
    security.check_sign_in_token(request, csrf_token)
    state, timeouts = request.app.state.indelible, request.app.state.timeouts
    method = sessions.ApiKeySignIn()

    def exchange():
        with state.pool.connection() as conn:
            found = method.exchange(conn, api_key) if api_key.strip() else None
            if found is None:
                return None
            principal, subject = found
            return sessions.start(conn, principal=principal, method=method.name,
                                  subject=subject, timeouts=timeouts,
                                  seal=request.app.state.session_seal)
    started = await run_in_threadpool(exchange)
    if started is None:
        token = security.new_sign_in_token()
        response = render(request, "sign_in.html", status_code=401, csrf_token=token,
                          next=security.safe_next(next),
                          error="That API key is unknown or revoked.")
        response.set_cookie(security.SIGN_IN_COOKIE, token, path="/console/sign-in",
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response
    cookie, _ = started
    response = RedirectResponse(security.safe_next(next), status_code=303)
    sessions.set_cookie(response, request, cookie, timeouts)
    response.delete_cookie(security.SIGN_IN_COOKIE, path="/console/sign-in")
    return response


@router.post("/sign-out")
async def sign_out(request: Request,
                   viewer: Annotated[sessions.Viewer, Depends(security.posting_viewer)]):
    state, cookie = request.app.state.indelible, request.cookies[sessions.COOKIE]

    def end():
        with state.pool.connection() as conn:
            sessions.end(conn, viewer, cookie)
    await run_in_threadpool(end)
    response = RedirectResponse("/console/sign-in?reason=" + quote(security.SIGNED_OUT),
                                status_code=303)
    sessions.clear_cookie(response, request)
    return response
