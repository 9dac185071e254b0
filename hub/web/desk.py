"""Work desk pages: each team's queue and the item page with its actions (``hub.desk`` does the work)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from hub import desk, desk_config
from hub.accounts import StaffUser
from hub.ledger.db import session_scope
from hub.web import csrf
from hub.web.auth import ledger_url, require_desk, web_settings
from hub.web.pages import redirect, render

router = APIRouter(prefix="/desk", dependencies=[Depends(require_desk)])
post_guard = [Depends(require_desk), Depends(csrf.require_token)]
FIX_PREFIX = "f_"


def _http(exc: desk.DeskError) -> HTTPException:
    status = {desk.NotFound: 404, desk.Forbidden: 403, desk.Conflict: 409}.get(type(exc), 422)
    return HTTPException(status, str(exc))


@router.get("", name="desk")
def queue_page(request: Request, user: StaffUser = Depends(require_desk), team: str = "",
               kind: str = "", system: str = "", state: str = "active", assignee: str = "",
               age: str = "", q: str = "", overdue: str = "") -> Response:
    teams = desk.visible_teams(user)
    if team and team not in teams:
        raise HTTPException(403, "You do not work in that team.")
    filt = desk.QueueFilter(team=team, kind=kind[:40], system=system[:64],
                            state=state if state in desk.STATE_FILTERS else "active",
                            assignee=assignee[:80], age=age if age in desk.AGES else "", q=q[:120],
                            overdue=overdue == "1")
    with session_scope(ledger_url(request)) as session:
        rows, total = desk.queue(session, user, filt)
        counts = desk.team_counts(session, user)
        choices = desk.filter_choices(session, user)
        config = desk_config.current()
        context: dict[str, Any] = {
            "rows": rows, "total": total, "filt": filt, "counts": counts, "choices": choices,
            "teams": teams, "team_labels": {t: config.team_label(t) for t in teams},
            "kind_labels": {k: config.kind(k).label for k in choices["kinds"]},
            "states": list(desk.STATE_FILTERS), "ages": list(desk.AGES)}
        return render(request, "desk.html", context)


def _item_page(request: Request, user: StaffUser, item_id: int, *, errors: dict[str, str] | None = None,
               message: str = "", submitted: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    with session_scope(ledger_url(request)) as session:
        try:
            view = desk.view_item(session, user, item_id)
        except desk.DeskError as exc:
            raise _http(exc) from exc
        if submitted:
            for spec in view.fix_fields:
                if spec.name in submitted:
                    spec.value = submitted[spec.name]
        errors = errors or {}
        field_errors = {f.name: [f"{n}: {m}" for n, m in errors.items()
                                 if n == f.name or n.startswith(f.name + ".")]
                        for f in view.fix_fields}
        return render(request, "item.html", {"v": view, "errors": errors, "message": message,
                                             "field_errors": field_errors,
                                             "airflow": web_settings(request).airflow_ui_url},
                      status_code=status_code)


@router.get("/items/{item_id}", name="desk_item")
def item_page(request: Request, item_id: int, user: StaffUser = Depends(require_desk)) -> Response:
    return _item_page(request, user, item_id)


def _act(request: Request, user: StaffUser, item_id: int, done: str, action: Any) -> Response:
    try:
        with session_scope(ledger_url(request)) as session:
            action(session)
    except desk.Invalid as exc:
        return _item_page(request, user, item_id, errors=exc.errors, message=str(exc), status_code=422)
    except desk.DeskError as exc:
        raise _http(exc) from exc
    return redirect(request, "desk_item", {"done": done}, item_id=item_id)


@router.post("/items/{item_id}/claim", name="desk_claim", dependencies=post_guard)
def claim(request: Request, item_id: int, user: StaffUser = Depends(require_desk)) -> Response:
    return _act(request, user, item_id, "claimed", lambda s: desk.claim(s, user, item_id))


@router.post("/items/{item_id}/unassign", name="desk_unassign", dependencies=post_guard)
def unassign(request: Request, item_id: int, user: StaffUser = Depends(require_desk)) -> Response:
    return _act(request, user, item_id, "unassigned", lambda s: desk.unassign(s, user, item_id))


@router.post("/items/{item_id}/comment", name="desk_comment", dependencies=post_guard)
def add_comment(request: Request, item_id: int, user: StaffUser = Depends(require_desk),
                body: str = Form("", max_length=desk.MAX_COMMENT * 2)) -> Response:
    return _act(request, user, item_id, "commented", lambda s: desk.comment(s, user, item_id, body))


@router.post("/items/{item_id}/resolve", name="desk_resolve", dependencies=post_guard)
def resolve(request: Request, item_id: int, user: StaffUser = Depends(require_desk),
            code: str = Form("", max_length=40), note: str = Form("", max_length=desk.MAX_NOTE * 2),
            ) -> Response:
    return _act(request, user, item_id, "resolved", lambda s: desk.resolve(s, user, item_id, code, note))


@router.post("/items/{item_id}/cancel", name="desk_cancel", dependencies=post_guard)
def cancel(request: Request, item_id: int, user: StaffUser = Depends(require_desk),
           reason: str = Form("", max_length=desk.MAX_NOTE * 2)) -> Response:
    return _act(request, user, item_id, "cancelled", lambda s: desk.cancel(s, user, item_id, reason))


@router.post("/items/{item_id}/fix", name="desk_fix", dependencies=post_guard)
async def fix_and_retry(request: Request, item_id: int,
                        user: StaffUser = Depends(require_desk)) -> Response:
    form = await request.form(max_fields=100)
    submitted = {k[len(FIX_PREFIX):]: v for k, v in form.items()
                 if k.startswith(FIX_PREFIX) and isinstance(v, str)}

    def run() -> Response:
        try:
            with session_scope(ledger_url(request)) as session:
                desk.fix_and_retry(session, user, item_id, submitted)
        except desk.Invalid as exc:
            return _item_page(request, user, item_id, errors=exc.errors, message=str(exc),
                              submitted=submitted, status_code=422)
        except desk.DeskError as exc:
            raise _http(exc) from exc
        return redirect(request, "desk_item", {"done": "resent"}, item_id=item_id)

    return await run_in_threadpool(run)
