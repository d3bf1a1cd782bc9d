"""GET /v1/me: what the presented key may do, so a client (the dashboard) shows only what it can use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.auth import get_principal
from api.schemas import problem_responses
from shared.api_keys import Principal
from shared.scopes import Scope, grants

router = APIRouter(prefix="/v1", tags=["keys"], responses=problem_responses(401, 429, 503))


class Abilities(BaseModel):
    read_jobs: bool
    write_jobs: bool
    subject_requests: bool
    admin: bool


class CurrentKey(BaseModel):
    tenant_id: str
    key_id: str
    scopes: list[str]
    can: Abilities


@router.get("/me", response_model=CurrentKey)
def current_key(principal: Annotated[Principal, Depends(get_principal)]) -> CurrentKey:
    """The key's tenant and scopes; `can` applies the rule that `admin` grants every scope."""
    held = principal.scopes
    return CurrentKey(
        tenant_id=principal.tenant_id, key_id=principal.key_id, scopes=sorted(held),
        can=Abilities(read_jobs=grants(held, Scope.jobs_read), write_jobs=grants(held, Scope.jobs_write),
                      subject_requests=grants(held, Scope.subject_requests), admin=grants(held, Scope.admin)),
    )
