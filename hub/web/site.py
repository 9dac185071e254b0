"""Puts the people's side on the hub app: security headers, sign-in, the desk, operations,
management information, accounts, /metrics, static files and friendly error pages.

``install(app, url=...)`` is all ``hub.web.app`` calls. Every route added here is guarded by
``hub.web.auth`` (tests/web/test_guard.py walks every route of the app to prove it).
"""
from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.web import admin, auth, desk, login, metrics, mi, operations, reconcile
from hub.web.pages import STATIC_DIR, path_for, render
from hub.web.security import BodyTooLarge, SecurityHeaders
from hub.web.settings import WebSettings

#: Paths answered as JSON (machines), never with an HTML page or a redirect.
API_PREFIXES = ("/api/", "/metrics", "/webhooks/", "/healthz")


def wants_html(request: Request) -> bool:
    return not auth.local_path(request).startswith(API_PREFIXES)


#: FastAPI's own open documentation routes: replaced by a guarded /api/openapi.json.
OPEN_DOC_PATHS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def _guard_api_description(app: FastAPI) -> None:
    app.router.routes[:] = [r for r in app.router.routes
                            if getattr(r, "path", None) not in OPEN_DOC_PATHS]
    app.docs_url = app.redoc_url = app.openapi_url = None

    @app.get("/api/openapi.json", include_in_schema=False,
             dependencies=[Depends(auth.operations_or_token)])
    def api_description() -> JSONResponse:
        return JSONResponse(app.openapi())


def install(app: FastAPI, *, url: str | None = None, settings: WebSettings | None = None) -> None:
    settings = settings or WebSettings.from_env()
    _guard_api_description(app)
    app.state.ledger_url = url
    app.state.web_settings = settings
    app.add_middleware(SecurityHeaders, max_body_bytes=settings.max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for module in (login, desk, operations, reconcile, mi, admin, metrics):
        app.include_router(module.router)

    @app.exception_handler(auth.NotSignedIn)
    async def not_signed_in(request: Request, exc: auth.NotSignedIn) -> Response:
        if not wants_html(request):
            return JSONResponse({"detail": "sign in or send a valid bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(path_for(request, "login", {"next": target}), status_code=303)

    @app.exception_handler(auth.PasswordChangeRequired)
    async def password_change(request: Request, exc: auth.PasswordChangeRequired) -> Response:
        if not wants_html(request):
            return JSONResponse({"detail": "choose a new password first"}, status_code=403)
        return RedirectResponse(path_for(request, "change_password"), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not wants_html(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                headers=getattr(exc, "headers", None))
        auth.signed_in(request)
        return render(request, "error.html", {"status": exc.status_code, "detail": exc.detail},
                      status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        fields = sorted({".".join(str(p) for p in e["loc"][1:]) or "body" for e in exc.errors()})
        if not wants_html(request):
            return JSONResponse({"detail": [{"loc": e["loc"], "msg": e["msg"], "type": e["type"]}
                                            for e in exc.errors()]}, status_code=422)
        auth.signed_in(request)
        return render(request, "error.html", {"status": 422,
                                              "detail": f"Please check: {', '.join(fields)}."},
                      status_code=422)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return JSONResponse({"detail": "request body too large"}, status_code=413)
