"""The worker: the Celery app, thin tasks, and the engine they call."""
