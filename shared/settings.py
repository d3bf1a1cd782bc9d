"""Typed settings, read from `VEIL_*` environment variables.

Nothing reads the environment at import time: entry points call `get_settings()` (cached) or build a
`Settings(...)` of their own and pass it down, so tests can run several configurations in one process.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class StorageBackend(StrEnum):
    local = "local"
    s3 = "s3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VEIL_", env_file=None, extra="ignore")

    environment: Environment = Environment.development
    data_dir: Path = Field(Path(".veil-data"), description="Where embedded defaults keep their files.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite in data_dir.")
    broker_url: str | None = Field(None, description="Celery broker; default: embedded filesystem broker.")
    storage_root: Path | None = Field(None, description="Local-disk object storage; default: data_dir/storage.")
    storage_backend: StorageBackend = Field(StorageBackend.local, description="Where objects are kept.")
    s3_endpoint_url: str | None = Field(None, description="S3 API URL; default: AWS's for the region.")
    s3_bucket: str | None = Field(None, description="Bucket for every object; required with the s3 backend.")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = Field(None, description="Default: boto3's credential chain.")
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: str = Field("path", pattern="^(path|virtual|auto)$",
                                     description="path suits MinIO, SeaweedFS and Ceph; virtual suits AWS.")
    subject_key: str = Field(
        "development-only-subject-key", description="Secret for the keyed hash of subject identifiers."
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_url: str | None = Field(None, description="Base URL printed and used in Location headers.")

    max_upload_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(80_000_000, gt=0, description="Refuses decompression bombs.")
    jpeg_quality: int = Field(92, ge=1, le=100)
    keep_metadata: bool = Field(False, description="Keep a safe subset (ICC profile) instead of none.")
    max_video_upload_bytes: int = Field(4 * 1024**3, gt=0, description="Upload limit for videos (images: above).")
    max_video_duration_s: float = Field(3600.0, gt=0)
    max_video_width: int = Field(7680, gt=0)
    max_video_height: int = Field(4320, gt=0)
    video_crf: int = Field(20, ge=0, le=51, description="x264/x265 constant rate factor of the output.")
    video_preset: str = Field("veryfast", description="x264/x265 speed preset of the output.")
    # Diamond motion search instead of veryfast's hexagon: on the two dashcam clips and the street clip of the
    # shared data, x264 used 3-13 % less CPU for files within 1 % of the size and PSNR within 0.03 dB.
    # No B-frames: on the dashcam footage they cost 21-30 % of x264's CPU and bought nothing (crf 20 without them:
    # PSNR-Y +0.7 and +0.8 dB at 720p and 540p, 0.0 at 1080p, files -7 % to +10 %); only a synthetic pan over
    # still photos gained from them (0.4 dB at equal size). Frames also leave the encoder in display order.
    # Partitions i8x8,i4x4 (superfast's): no 8x8 sub-partitions of P-macroblocks, whose search took a quarter of
    # x264's CPU; without it x264 used 0.74-0.79x the CPU for files 1-5 % larger, PSNR-Y -0.14 to +0.10 dB.
    video_encoder_params: str = Field(
        "me=dia:bframes=0:partitions=i8x8,i4x4", pattern=r"^([a-z0-9_-]+=[^:=]+(:[a-z0-9_-]+=[^:=]+)*)?$",
        description="x264 options applied over the preset, key=value joined by ':' (empty: the preset alone).",
    )
    video_detection_preset: Literal["fast", "balanced", "thorough"] = Field(
        "fast", description="Detection preset of video jobs that name none (photos: default_preset)."
    )
    video_face_threshold: float = Field(
        0.4, ge=0.05, le=0.99, description="Face score threshold of video jobs that name none."
    )
    video_face_cadence: int = Field(2, ge=1, le=8, description="Detect faces on every n-th video frame; track between.")
    video_plate_cadence: int = Field(4, ge=1, le=8, description="Detect plates on every n-th video frame.")
    video_task_time_limit_seconds: int | None = Field(
        None, gt=0, description="Hard limit for one video attempt; default: the most the visibility timeout allows."
    )

    lease_seconds: int = Field(120, gt=0, description="How long a claim lasts without a heartbeat.")
    max_attempts: int = Field(3, ge=1)
    queued_republish_seconds: int = Field(60, gt=0, description="Republish queued jobs older than this.")
    reap_interval_seconds: float = Field(30.0, gt=0)
    task_time_limit_seconds: int = Field(600, gt=0)
    visibility_timeout_seconds: int = Field(3600, gt=0)
    keep_originals_hours: float = Field(0.0, ge=0, description="0 deletes an upload once its job succeeds.")
    keep_failed_inputs_days: float = Field(7.0, ge=0, description="Days an upload of a failed job is kept.")
    keep_outputs_days: float | None = Field(None, ge=0, description="Days outputs are kept; None: until deleted.")
    keep_access_archives_days: float = Field(7.0, gt=0, description="Days a data-subject access archive is kept.")
    erasure_grace_seconds: float = Field(
        60.0, ge=0, description="Wait before an erasure's second sweep, which catches late writes."
    )

    requests_per_minute: int | None = Field(
        600, ge=1, description="Per-tenant request rate limit unless the tenant sets its own; None: unlimited."
    )
    max_active_jobs: int | None = Field(
        None, ge=1, description="Per-tenant limit on queued plus running jobs unless the tenant sets its own."
    )
    storage_quota_bytes: int | None = Field(
        None, ge=1, description="Per-tenant limit on stored inputs plus outputs unless the tenant sets its own."
    )
    webhook_allow_private: bool = Field(
        False, description="Allow callbacks to loopback and private addresses (refused against SSRF)."
    )
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    webhook_max_attempts: int = Field(8, ge=1)

    worker_concurrency: int = Field(1, ge=1)
    ort_threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads; default: ORT's.")
    ort_spin_wait: bool = Field(
        False, description="Let ONNX Runtime's pool threads busy-wait for work (faster lone inferences, but they "
        "take the cores a video's decoder and encoder need)."
    )
    ort_providers: list[str] = Field(default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    ort_cpu_models: list[str] = Field(
        default_factory=lambda: ["plate_detector_v1", "plate_verifier_v1"],
        description="Models that run on the CPU provider whatever VEIL_ORT_PROVIDERS prefers. The plate models "
        "see a new input shape on most calls in a video (regions around tracks, a varying number of crops); on "
        "an H200 with CUDA each such call took about a second (README, GPU).",
    )
    ort_cudnn_conv_algo_search: Literal["HEURISTIC", "EXHAUSTIVE", "DEFAULT"] = Field(
        "HEURISTIC", description="How the CUDA provider picks each convolution's cuDNN algorithm for a new input "
        "shape: EXHAUSTIVE times them all (ONNX Runtime's default), HEURISTIC asks cuDNN, DEFAULT takes the first."
    )
    models_dir: Path | None = Field(
        None, description="Where `veil models pull` puts registry models; default: the user's cache (veil/models)."
    )
    allowed_model_licences: list[str] = Field(
        default_factory=lambda: ["MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause"],
        description="SPDX licences a model's weights and training code may carry for it to load.",
    )
    default_preset: Literal["fast", "balanced", "thorough"] = Field(
        # thorough: the only face preset that meets issue #3's coverage target (see worker/engine/faces/presets.py).
        "thorough", description="Detection preset of jobs that name none."
    )
    log_level: str = "INFO"
    require_provider: str | None = Field(
        None, description="A worker refuses to start unless this ONNX Runtime execution provider is active."
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token Prometheus presents to the API's /metrics; unset: /metrics is off."
    )
    worker_metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of a worker's own /metrics (processing times, provider); unset: off."
    )
    worker_metrics_host: str = Field("127.0.0.1", description="Address a worker's /metrics binds.")

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_scheme(cls, value: str | None) -> str | None:
        # Heroku-style and bare DSNs name no driver; SQLAlchemy would pick psycopg2, which we do not ship.
        if value and value.startswith(("postgres://", "postgresql://")):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment is Environment.production and self.subject_key.startswith("development-only"):
            raise ValueError("VEIL_SUBJECT_KEY must be set to a secret in production")
        if self.visibility_timeout_seconds <= 2 * self.task_time_limit_seconds:
            # A task outliving the visibility timeout is delivered again while still running (celery#5935).
            raise ValueError("VEIL_VISIBILITY_TIMEOUT_SECONDS must exceed twice VEIL_TASK_TIME_LIMIT_SECONDS")
        if self.visibility_timeout_seconds <= 2 * self.resolved_video_time_limit_seconds:
            raise ValueError("VEIL_VISIBILITY_TIMEOUT_SECONDS must exceed twice VEIL_VIDEO_TASK_TIME_LIMIT_SECONDS")
        return self

    @model_validator(mode="after")
    def _s3_needs_a_bucket_and_whole_credentials(self) -> Settings:
        if self.storage_backend is StorageBackend.s3 and not self.s3_bucket:
            raise ValueError("VEIL_S3_BUCKET must be set when VEIL_STORAGE_BACKEND is s3")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ValueError("set both VEIL_S3_ACCESS_KEY_ID and VEIL_S3_SECRET_ACCESS_KEY, or neither")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'veil.db').resolve()}"

    @property
    def resolved_video_time_limit_seconds(self) -> int:
        # A video may run far longer than a photo, but never past half the visibility timeout (celery#5935).
        if self.video_task_time_limit_seconds is not None:
            return self.video_task_time_limit_seconds
        return max(self.task_time_limit_seconds, (self.visibility_timeout_seconds - 1) // 2)

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def resolved_models_dir(self) -> Path:
        # A per-user cache rather than data_dir: every data dir (tests make many) shares one pulled copy.
        if self.models_dir is not None:
            return self.models_dir.resolve()
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache, "veil", "models").resolve()

    @property
    def resolved_storage_root(self) -> Path:
        return (self.storage_root or self.data_dir / "storage").resolve()

    @property
    def broker_folder(self) -> Path:
        return (self.data_dir / "broker").resolve()

    @property
    def uses_embedded_broker(self) -> bool:
        return self.resolved_broker_url.startswith("filesystem://")


@lru_cache
def get_settings() -> Settings:
    return Settings()
