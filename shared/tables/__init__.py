"""Every table, registered on one metadata. Every row that belongs to a customer carries its tenant."""

from shared.tables.base import metadata
from shared.tables.job import Job
from shared.tables.subject_requests import SubjectRequest
from shared.tables.tenancy import ApiKey, AuditEvent, Tenant
from shared.tables.webhooks import WebhookDelivery

__all__ = ["ApiKey", "AuditEvent", "Job", "SubjectRequest", "Tenant", "WebhookDelivery", "metadata"]
