"""Management information (being built)."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.accounts import ADMIN, OPERATIONS
from hub.web.auth import require_role
from hub.web.pages import render

router = APIRouter(dependencies=[Depends(require_role(OPERATIONS, ADMIN))])


@router.get("/mi", name="mi")
def page(request: Request) -> Response:
    return render(request, "error.html", {"status": 200, "detail": "Coming soon"})
