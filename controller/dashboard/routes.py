"""The dashboard's pages under /ui: server-rendered (Jinja2), refreshed live with htmx.

Reads go through the API's ObjectService with the session's identity (so a scoped
token sees only its objects); actions are forwarded to the REST API itself with the
session's bearer token, so the API's role check decides, not the page.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import httpx
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from controller.api.errors import ApiError
from controller.api.rbac import Identity, Verb
from controller.dashboard import views
from controller.dashboard.consoles import console_pages
from controller.dashboard.gitinfo import commits_of
from controller.dashboard.session import (
    COOKIE,
    CSRF_FIELD,
    SESSION_MAX_AGE_S,
    csrf_ok,
    csrf_token,
    identify,
    session_identity,
)

UI_PREFIX = "/ui"
TEMPLATES = Path(__file__).parent / "templates"
WATCH_POLL_S = 0.3
WATCH_STREAM_S = 120.0
MAX_FORM_BYTES = 16 * 1024

Session = Annotated[Identity, Depends(session_identity)]
Fragment = Annotated[str | None, Query(description="Render only the live part of the page")]

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["json"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
env.filters["when"] = lambda value: value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Return a rendered page; every page gets the caller and the session's CSRF token."""
    identity = getattr(request.state, "identity", None)
    session = request.cookies.get(COOKIE, "")
    context.update(
        identity=identity,
        may_act=bool(identity and identity.may(Verb.ACTION)),
        csrf=csrf_token(session) if session else "",
        ui=UI_PREFIX,
        path=request.url.path,
    )
    html = env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


async def read_form(request: Request) -> dict[str, str]:
    """Return an urlencoded form's fields (first value of each)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "RequestEntityTooLarge", "form too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


def _safe_next(target: str | None) -> str:
    """Return a local dashboard path to go to after login (never another site)."""
    if target and target.startswith(UI_PREFIX + "/") and not target.startswith("//"):
        return target
    return UI_PREFIX + "/"


def _objects(request: Request) -> Any:
    return request.app.state.objects


def dashboard_router() -> APIRouter:
    """Return the /ui routes."""
    router = APIRouter(prefix=UI_PREFIX, include_in_schema=False)

    @router.get("/login")
    def login_page(request: Request, next: str | None = None) -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next), error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await read_form(request)
        token = form.get("token", "").strip()
        target = _safe_next(form.get("next"))
        if not token or await identify(request, token) is None:
            return render(
                request,
                "login.html",
                status_code=401,
                next=target,
                error="That token is not valid (or was revoked).",
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=SESSION_MAX_AGE_S,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=UI_PREFIX,
        )
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{UI_PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=UI_PREFIX)
        return response

    @router.get("/")
    def overview_page(request: Request, identity: Session, fragment: Fragment = None) -> Response:
        objects = _objects(request)
        page = objects.store.list(label_selector=identity.scope)
        model = views.overview(page.items)
        template = "overview_live.html" if fragment else "overview.html"
        return render(request, template, view=model)

    @router.get("/hosts/{name}")
    def host_page(
        name: str, request: Request, identity: Session, fragment: Fragment = None
    ) -> Response:
        objects = _objects(request)
        stored = objects.get(identity, "Host", name)
        vms = [
            o
            for o in objects.list(identity, "VirtualMachine", None, None, None).items
            if o.obj.status is not None and o.obj.status.host == name
        ]
        context = _detail(objects, stored)
        context.update(row=views.host_row(stored), vms=vms)
        template = "host_live.html" if fragment else "host.html"
        return render(request, template, **context)

    @router.get("/vms/{name}")
    def vm_page(
        name: str, request: Request, identity: Session, fragment: Fragment = None
    ) -> Response:
        objects = _objects(request)
        stored = objects.get(identity, "VirtualMachine", name)
        hosts = [o.name for o in objects.list(identity, "Host", None, None, None).items]
        context = _detail(objects, stored)
        context.update(hosts=hosts)
        template = "vm_live.html" if fragment else "vm.html"
        return render(request, template, **context)

    router.include_router(console_pages(render))

    @router.get("/revisions")
    def revisions_page(request: Request, identity: Session, fragment: Fragment = None) -> Response:
        store = _objects(request).store
        plans = store.list_plans(limit=200)
        visible = _visible_refs(store, identity)
        if visible is not None:
            plans = [p for p in plans if any(a.get("target") in visible for a in p.actions)]
        commits = commits_of(store.list_sources(), {p.revision or "" for p in plans})
        rows = views.revisions(plans, commits)
        template = "revisions_live.html" if fragment else "revisions.html"
        return render(request, template, rows=rows, plans=plans[:50], visible=visible)

    @router.post("/hosts/{name}/{action}")
    async def host_action(name: str, action: str, request: Request, identity: Session) -> Response:
        if action not in ("drain", "undrain"):
            raise ApiError(404, "NotFound", f"no host action {action!r}")
        return await _forward(request, f"/api/v1/hosts/{quote(name)}/{action}", None)

    @router.post("/vms/{name}/migrate")
    async def vm_migrate(name: str, request: Request, identity: Session) -> Response:
        form = await read_form(request)
        return await _forward(
            request,
            f"/api/v1/virtualmachines/{quote(name)}/migrate",
            {"host": form.get("host")},
            form,
        )

    @router.post("/reconcile")
    async def reconcile(request: Request, identity: Session) -> Response:
        return await _forward(request, "/api/v1/reconcile", None)

    @router.get("/watch")
    async def watch(request: Request, identity: Session) -> StreamingResponse:
        store = _objects(request).store
        start = await run_in_threadpool(store.revision)

        async def stream() -> AsyncIterator[bytes]:
            seen = start
            deadline = time.monotonic() + WATCH_STREAM_S
            yield b"retry: 1000\n\n"
            while time.monotonic() < deadline:
                if await request.is_disconnected():
                    return
                batch = await run_in_threadpool(store.changes_since, seen, 1000)
                if batch:
                    seen = batch[-1].seq
                    yield f"id: {seen}\nevent: changed\ndata: {seen}\n\n".encode()
                await asyncio.sleep(WATCH_POLL_S)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return router


def _visible_refs(store: Any, identity: Identity) -> set[str] | None:
    if identity.scope is None:
        return None
    return {f"{s.kind}/{s.name}" for s in store.list(label_selector=identity.scope).items}


def _detail(objects: Any, stored: Any) -> dict[str, Any]:
    """Return what every detail page shows: spec, status, conditions, events, plan actions."""
    ref = f"{stored.kind}/{stored.name}"
    store = objects.store
    status = stored.obj.status
    return {
        "obj": stored,
        "spec": views.spec_doc(stored),
        "status": views.status_doc(stored),
        "conditions": status.conditions if status else [],
        "events": store.list_events(stored.kind, stored.name, limit=50),
        "actions": views.actions_on(store.list_plans(limit=200), ref),
    }


async def _forward(
    request: Request, path: str, body: dict[str, Any] | None, form: dict[str, str] | None = None
) -> Response:
    """POST to the REST API with the session's token; show its refusal, or go back."""
    form = form if form is not None else await read_form(request)
    session = request.cookies.get(COOKIE, "")
    if not csrf_ok(session, form.get(CSRF_FIELD)):
        return render(
            request,
            "refused.html",
            status_code=403,
            code=403,
            message="The form's anti-forgery token is missing or stale; reload the page.",
        )
    transport = httpx.ASGITransport(app=request.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://corral.internal") as api:
        answer = await api.post(
            path, json=body or {}, headers={"Authorization": f"Bearer {session}"}
        )
    if answer.status_code >= 400:
        try:
            message = answer.json().get("message", answer.text)
        except ValueError:
            message = answer.text
        return render(
            request,
            "refused.html",
            status_code=answer.status_code,
            code=answer.status_code,
            message=message,
        )
    back = _safe_next(form.get("back"))
    return RedirectResponse(back, status_code=303)
