"""Stable task and queue names, decoupled from module paths."""

from enum import StrEnum


class QueueName(StrEnum):
    images = "images"
    maintenance = "maintenance"


class TaskName(StrEnum):
    anonymize_image = "anonymize.image"
    reap = "maintenance.reap"


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.anonymize_image: QueueName.images,
    TaskName.reap: QueueName.maintenance,
}
