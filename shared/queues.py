"""Stable task and queue names, decoupled from module paths."""

from enum import StrEnum


class QueueName(StrEnum):
    images = "images"
    maintenance = "maintenance"
    webhooks = "webhooks"
    gdpr = "gdpr"


class TaskName(StrEnum):
    anonymize_image = "anonymize.image"
    reap = "maintenance.reap"
    deliver_webhook = "webhooks.deliver"
    gdpr_access = "gdpr.access"
    gdpr_erase = "gdpr.erase"


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.anonymize_image: QueueName.images,
    TaskName.reap: QueueName.maintenance,
    TaskName.deliver_webhook: QueueName.webhooks,
    TaskName.gdpr_access: QueueName.gdpr,
    TaskName.gdpr_erase: QueueName.gdpr,
}
