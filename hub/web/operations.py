"""Operations pages: per-system backlog, throughput, failures and latency; guarded replay of
failed commands; links into Airflow's runs (``hub.monitoring`` and ``hub.replay`` do the work)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from hub import monitoring, replay
from hub.accounts import OPERATIONS, StaffUser
from hub.ledger.db import session_scope
from hub.web import charts, csrf
from hub.web.auth import ledger_url, require_role, web_settings
from hub.web.pages import redirect, render

operations_only = require_role(OPERATIONS)
router = APIRouter(prefix="/operations", dependencies=[Depends(operations_only)])
post_guard = [Depends(operations_only), Depends(csrf.require_token)]


def duration(seconds: float | None) -> str:
    """``4 h 12 min``, ``38 s``: for latencies and ages."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


@router.get("", name="operations")
def operations_page(request: Request, user: StaffUser = Depends(operations_only)) -> Response:
    with session_scope(ledger_url(request)) as session:
        figures = monitoring.collect(session)
    sparks = {s: charts.sparkline(f.confirmed_per_hour, title=f"{s}: confirmed per hour, last 24 hours")
              for s, f in figures.systems.items()}
    return render(request, "operations.html", {
        "f": figures, "sparks": sparks, "duration": duration,
        "airflow": web_settings(request).airflow_ui_url})


async def _chosen(request: Request) -> list[int]:
    form = await request.form(max_fields=replay.MAX_PER_REPLAY + 10)
    ids = []
    for value in form.getlist("command"):
        if isinstance(value, str) and value.isdigit() and len(value) < 10:
            ids.append(int(value))
    return ids


@router.post("/replay", name="operations_replay_confirm", dependencies=post_guard)
async def confirm_replay(request: Request, user: StaffUser = Depends(operations_only)) -> Response:
    """Step one: show exactly what would be sent again, and ask."""
    ids = await _chosen(request)
    if not ids:
        raise HTTPException(422, "Choose at least one failed command to replay.")
    if len(ids) > replay.MAX_PER_REPLAY:
        raise HTTPException(422, f"Replay at most {replay.MAX_PER_REPLAY} commands at a time.")
    with session_scope(ledger_url(request)) as session:
        chosen = monitoring.failed_commands(session, ids=ids)
    if not chosen:
        raise HTTPException(409, "None of those commands is failed any more.")
    return render(request, "replay_confirm.html", {"commands": chosen})


@router.post("/replay/confirmed", name="operations_replay", dependencies=post_guard)
async def do_replay(request: Request, user: StaffUser = Depends(operations_only)) -> Response:
    """Step two: replay, audited per command."""
    ids = await _chosen(request)
    form = await request.form()
    if form.get("confirm") != "yes":
        raise HTTPException(422, "Tick the box to confirm the replay.")
    try:
        with session_scope(ledger_url(request)) as session:
            done = replay.replay(session, user, ids)
    except replay.ReplayRefused as exc:
        raise HTTPException(422, str(exc).capitalize() + ".") from exc
    if not done:
        raise HTTPException(409, "None of those commands is failed any more.")
    return redirect(request, "operations", {"done": "replayed"})
