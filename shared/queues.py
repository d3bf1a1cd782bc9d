"""Stable task and queue names, decoupled from module paths."""

from enum import StrEnum


class QueueName(StrEnum):
    images = "images"
    videos = "videos"
    maintenance = "maintenance"
    webhooks = "webhooks"
    gdpr = "gdpr"


class TaskName(StrEnum):
    anonymize_image = "anonymize.image"
    anonymize_video = "anonymize.video"
    reap = "maintenance.reap"
    deliver_webhook = "webhooks.deliver"
    gdpr_access = "gdpr.access"
    gdpr_erase = "gdpr.erase"


TASK_QUEUES: dict[TaskName, QueueName] = {
    TaskName.anonymize_image: QueueName.images,
    TaskName.anonymize_video: QueueName.videos,
    TaskName.reap: QueueName.maintenance,
    TaskName.deliver_webhook: QueueName.webhooks,
    TaskName.gdpr_access: QueueName.gdpr,
    TaskName.gdpr_erase: QueueName.gdpr,
}

# A job's kind picks its task (and so its queue): long videos never wait in front of photos.
KIND_TASKS: dict[str, TaskName] = {
    "image": TaskName.anonymize_image,
    "video": TaskName.anonymize_video,
}
