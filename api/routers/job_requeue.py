"""POST /v1/jobs/{id}/requeue: an admin gives a failed or dead job another run. Committed, then published."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from api.auth import require
from api.deps import PublisherDep, SessionDep, SettingsDep, StorageDep
from api.problems import Problem
from api.schemas import JobOut, problem_responses
from shared import audit, job_queries, job_requeue
from shared.api_keys import Principal
from shared.job_requeue import Refusal
from shared.queues import KIND_TASKS
from shared.scopes import Scope

log = logging.getLogger("veil.api")
Admin = Annotated[Principal, Depends(require(Scope.admin))]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=problem_responses(401, 403, 404, 409, 422, 429, 503))

_MESSAGES = {
    Refusal.not_requeueable: "Only a failed or dead job can be requeued.",
    Refusal.input_gone: "The job's upload is no longer stored, so it cannot run again.",
}


@router.post("/{job_id}/requeue", status_code=202, response_model=JobOut)
def requeue_job(job_id: uuid.UUID, session: SessionDep, storage: StorageDep, publisher: PublisherDep,
                settings: SettingsDep, principal: Admin) -> JobOut:
    """Back to `queued` with `VEIL_MAX_ATTEMPTS` more attempts; needs the admin scope."""
    job = job_queries.get(session=session, tenant_id=principal.tenant_id, job_id=job_id)
    if job is None:
        raise Problem(404, "job_not_found", "No such job.")
    exists = job.input_key is not None and storage.exists(job.input_key)
    why = job_requeue.refusal(job, exists)
    if why is None and not job_requeue.requeue(session=session, tenant_id=principal.tenant_id, job=job,
                                               extra_attempts=settings.max_attempts):
        why = Refusal.not_requeueable  # cancelled, erased or requeued by someone else meanwhile
    if why is not None:
        audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id,
                     action="job.requeue", resource_type="job", resource_id=str(job_id), outcome="refused")
        raise Problem(409, why.value, _MESSAGES[why], job_status=job.status)
    audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id, action="job.requeue",
                 resource_type="job", resource_id=str(job_id))
    # Only now that the row is committed; a lost message is republished by the reaper from the row.
    publisher.publish(KIND_TASKS[job.kind], [job_id])
    log.info("job requeued", extra={"job_id": str(job_id), "kind": job.kind})
    session.refresh(job)
    return JobOut.of(job)
