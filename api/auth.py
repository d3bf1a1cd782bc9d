"""Who is calling: the one place a request's tenant and scopes are decided.

401 without a valid key, 403 for a missing scope, 429 past the tenant's request rate. Another tenant's
resources are 404, decided in the tenant-scoped queries, never by a check in each route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SessionDep, SettingsDep
from api.problems import Problem
from shared import api_keys
from shared.api_keys import Principal
from shared.rate_limit import RateLimiter
from shared.scopes import Scope, grants
from shared.tables import Tenant
from shared.tenant_limits import limits_for

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer veil_...`.")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="veil"'}


def get_principal(request: Request, session: SessionDep, settings: SettingsDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None:
        raise Problem(401, "unauthorized", "An API key is required: Authorization: Bearer <key>.",
                      headers=_CHALLENGE)
    principal = api_keys.authenticate(session=session, presented=credentials.credentials)
    if principal is None:
        raise Problem(401, "invalid_key", "The API key is not valid, or was revoked or has expired.",
                      headers=_CHALLENGE)
    request.state.key_id = principal.key_id
    tenant = session.get(Tenant, principal.tenant_id)
    assert tenant is not None  # authenticate() checked it
    rpm = limits_for(tenant, settings).requests_per_minute
    if rpm is not None:
        limiter: RateLimiter = request.app.state.rate_limiter
        decision = limiter.hit(f"tenant:{tenant.id}", rpm)
        if not decision.allowed:
            raise Problem(429, "rate_limited", f"More than {rpm} requests a minute.",
                          headers={"Retry-After": str(decision.retry_after)})
    return principal


def require(scope: Scope) -> Callable[[Principal], Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not grants(principal.scopes, scope):
            raise Problem(403, "missing_scope", f"This needs an API key with the '{scope.value}' scope.",
                          required_scope=scope.value)
        return principal

    return check


ReadJobs = Annotated[Principal, Depends(require(Scope.jobs_read))]
WriteJobs = Annotated[Principal, Depends(require(Scope.jobs_write))]
