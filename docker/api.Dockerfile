# syntax=docker/dockerfile:1
# Veil HTTP API. Build from the repository root:
#   docker build -f docker/api.Dockerfile -t veil-api .
# The same image runs the migrations (`veil db upgrade`) in docker-compose.yml.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the project and its dependencies into a venv -------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the wheel needs; .dockerignore keeps the rest of the tree out of the context.
COPY pyproject.toml README.md ./
COPY api/ api/
COPY worker/ worker/
COPY shared/ shared/
COPY cli/ cli/
COPY migrations/ migrations/
# Versions come from pyproject.toml's ranges (the project has no lock file yet).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[cpu]'

# ---- runtime: the venv only, no sources, non-root ------------------------------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VEIL_ENVIRONMENT=production \
    VEIL_DATA_DIR=/var/lib/veil \
    VEIL_STORAGE_ROOT=/data/storage
# A fixed UID/GID shared by every Veil image, so the `storage` volume is writable from all of them.
RUN groupadd --system --gid 10001 veil \
    && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --shell /usr/sbin/nologin veil \
    && mkdir -p /var/lib/veil /data/storage \
    && chown veil:veil /var/lib/veil /data/storage
COPY --from=build /opt/venv /opt/venv
WORKDIR /var/lib/veil
USER 10001:10001
EXPOSE 8000
# No curl in slim images: the standard library does the probe (urlopen raises on a non-2xx answer).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["veil", "api", "--host", "0.0.0.0", "--port", "8000"]
