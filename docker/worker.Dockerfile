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
    VEIL_STORAGE_ROOT=/data/storage
# Same UID/GID as the API and GPU images: the `storage` volume is shared between them.
# VEIL_DATA_DIR holds the beat schedule when the worker runs with --beat.
RUN groupadd --system --gid 10001 veil \
    && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --shell /usr/sbin/nologin veil \
    && mkdir -p /var/lib/veil /data/storage \
    && chown veil:veil /var/lib/veil /data/storage
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/veil
USER 10001:10001
CMD ["veil", "worker", "--queues", "images,videos,maintenance,webhooks,gdpr"]
