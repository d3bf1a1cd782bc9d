"""Per-process resources of a worker, built after fork (never in the prefork parent: celery#3402)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from shared.db import make_engine
from shared.settings import Settings
from shared.storage import Storage, make_storage
from worker.engine.face_yunet import YuNetDetector
from worker.engine.model_files import YUNET_N
from worker.engine.onnx_session import create_session
from worker.engine.pipeline import ImageAnonymizer
from worker.engine.video import VideoAnonymizer

log = logging.getLogger("veil.worker")


@dataclass
class WorkerContext:
    settings: Settings
    engine: Engine
    storage: Storage
    _anonymizer: ImageAnonymizer | None = field(default=None, repr=False)
    _video_anonymizer: VideoAnonymizer | None = field(default=None, repr=False)

    @classmethod
    def build(cls, settings: Settings) -> WorkerContext:
        return cls(settings=settings, engine=make_engine(settings),
                   storage=make_storage(settings.resolved_storage_root))

    @property
    def anonymizer(self) -> ImageAnonymizer:
        # One ONNX Runtime session per process, made on first use in the process that runs the tasks.
        if self._anonymizer is None:
            self._anonymizer = build_anonymizer(self.settings)
        return self._anonymizer

    @property
    def video_anonymizer(self) -> VideoAnonymizer:
        # Shares the image anonymizer's detector: one ONNX Runtime session per process serves both.
        if self._video_anonymizer is None:
            self._video_anonymizer = VideoAnonymizer(self.anonymizer.detector)
        return self._video_anonymizer


def build_anonymizer(settings: Settings) -> ImageAnonymizer:
    session = create_session(YUNET_N.path, providers_preference=settings.ort_providers,
                             intra_op_threads=settings.ort_threads)
    return ImageAnonymizer(YuNetDetector(YUNET_N, session=session))


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
