"""Per-process resources of a worker, built after fork (never in the prefork parent: celery#3402)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.settings import Settings
from worker.engine.detection_engine import DetectionEngines
from worker.engine.errors import ModelUnusable
from worker.engine.pipeline import ImageAnonymizer
from worker.engine.registry import ModelRegistry
from worker.engine.video import VideoAnonymizer

if TYPE_CHECKING:  # the database and storage clients load in build(): the CLI's engines need neither
    from sqlalchemy.engine import Engine

    from shared.storage import Storage

log = logging.getLogger("veil.worker")


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    storage: Storage
    _anonymizer: ImageAnonymizer | None = field(default=None, repr=False)
    _video_anonymizer: VideoAnonymizer | None = field(default=None, repr=False)
    # Models this process needed and could not use (missing, altered, licence refused): it is not ready for jobs
    # that use them (its /metrics say so).
    unusable_models: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, settings: Settings) -> WorkerContext:
        from shared.db import make_engine
        from shared.storage import make_storage

        return cls(settings=settings, engine=make_engine(settings),
                   storage=make_storage(settings))

    @property
    def anonymizer(self) -> ImageAnonymizer:
        # One ONNX Runtime session per model per process, made on first use in the process that runs the tasks.
        if self._anonymizer is None:
            self._anonymizer = build_anonymizer(self.settings)
        return self._anonymizer

    @property
    def video_anonymizer(self) -> VideoAnonymizer:
        # Shares the image anonymizer's detectors: one set of ONNX Runtime sessions per process serves both.
        if self._video_anonymizer is None:
            self._video_anonymizer = VideoAnonymizer(self.anonymizer.engines)
        return self._video_anonymizer

    def model_unusable(self, exc: ModelUnusable, job_id: str | None = None) -> None:
        """Record a model this worker lacks or cannot use, and say so at error level: an operator must install
        it (or allow its licence)."""
        self.unusable_models.add(exc.model)
        log.error("model missing or unusable: this worker is not ready for jobs that need it "
                  "(run `veil models verify`)",
                  extra={"model": exc.model, "reason": exc.code, **({"job_id": job_id} if job_id else {})})


def build_engines(settings: Settings) -> DetectionEngines:
    """Every preset's detectors, on licence- and hash-checked sessions from the model registry."""
    registry = ModelRegistry.from_settings(settings)
    return DetectionEngines.from_loader(registry.load_session, registry.record,
                                        default_preset=settings.default_preset)


def build_anonymizer(settings: Settings) -> ImageAnonymizer:
    return ImageAnonymizer(build_engines(settings))


class ProcessLocal:
    """A WorkerContext per process id: a forked child never reuses its parent's connections or sessions."""

    def __init__(self, factory: Callable[[], WorkerContext]) -> None:
        self._factory = factory
        self._pid: int | None = None
        self._ctx: WorkerContext | None = None

    def __call__(self) -> WorkerContext:
        if self._ctx is None or self._pid != os.getpid():
            self._ctx, self._pid = self._factory(), os.getpid()
        return self._ctx
