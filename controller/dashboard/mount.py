"""Adding the dashboard to the API application."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from controller.api.errors import ApiError, api_error_handler
from controller.dashboard.routes import UI_PREFIX, dashboard_router, render
from controller.dashboard.session import LoginRequired

STATIC = Path(__file__).parent / "static"


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": f"{UI_PREFIX}/login"})
    return RedirectResponse(f"{UI_PREFIX}/login?next={quote(target)}", status_code=303)


async def _page_error(request: Request, exc: Exception) -> Response:
    """Answer an API error on a dashboard page as a page; elsewhere as the API's Status."""
    assert isinstance(exc, ApiError)
    if not request.url.path.startswith(UI_PREFIX + "/"):
        return await api_error_handler(request, exc)
    return render(request, "refused.html", status_code=exc.code, code=exc.code, message=exc.message)


def mount_dashboard(app: FastAPI) -> None:
    """Add /ui (pages and /ui/static) to `app`."""
    app.include_router(dashboard_router())
    app.mount(f"{UI_PREFIX}/static", StaticFiles(directory=STATIC), name="ui-static")
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(ApiError, _page_error)
