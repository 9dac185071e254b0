"""Operations view (being built)."""
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from hub.accounts import OPERATIONS
from hub.web.auth import require_role
from hub.web.pages import render

router = APIRouter(dependencies=[Depends(require_role(OPERATIONS))])


@router.get("/operations", name="operations")
def page(request: Request) -> Response:
    return render(request, "error.html", {"status": 200, "detail": "Coming soon"})
