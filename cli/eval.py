"""`veil eval`: measure detectors and presets on a labelled COCO set, or compare them on unlabelled images."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from shared.settings import get_settings

if TYPE_CHECKING:
    from worker.evaluation.dataset import Dataset
    from worker.evaluation.engines import Candidate

console = Console(stderr=True)
# Piped or captured output (a file, CI logs) is not cut to 80 columns: the table has ten of them.
out = Console() if Console().is_terminal else Console(width=160)


def _split(value: str | None) -> list[str]:
    return [t.strip() for t in (value or "").split(",") if t.strip()]


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True)


def _advance(progress: Progress, task: TaskID, done: int, _total: int) -> None:
    progress.update(task, completed=done)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(2)


def eval_command(
    dataset: Annotated[Path | None, typer.Option(
        dir_okay=False, help="COCO JSON with face/plate boxes (see ../shared/data/README.md).")] = None,
    images: Annotated[Path | None, typer.Option(
        file_okay=False, help="Folder the dataset's file_name paths are relative to; default: images/ beside it.")
    ] = None,
    unlabelled: Annotated[Path | None, typer.Option(
        file_okay=False, help="Compare candidates on the images in this folder instead (no labels).")] = None,
    preset: Annotated[list[str] | None, typer.Option(help="A preset to measure; repeat for several.")] = None,
    detector: Annotated[list[str] | None, typer.Option(
        help="A registry model at its native settings, e.g. yunet_n; repeat for several.")] = None,
    targets: Annotated[str | None, typer.Option(
        help="Classes to score: face, plate or face,plate. Default: those the dataset labels.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", dir_okay=False, help="Write the full figures here.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(dir_okay=False, help="Write PR curves and recall by size (PNG).")
    ] = None,
    sheet: Annotated[Path, typer.Option(dir_okay=False, help="With --unlabelled: the contact sheet of crops "
                                        "where candidates disagree (PNG; it shows faces, keep it private).")
    ] = Path("veil-eval-disagreements.png"),
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N images (by id, or by name).")] = None,
    threshold: Annotated[list[float] | None, typer.Option(
        help="Score threshold for every candidate instead of its own; repeat for a sweep (named fast@0.4).")
    ] = None,
) -> None:
    """Coverage (C80), recall, precision, AP50, false masks and speed, per class and box size."""
    from worker.evaluation.dataset import CLASSES, DatasetError, load_coco

    if (dataset is None) == (unlabelled is None):
        raise _fail("give either --dataset (labelled) or --unlabelled DIR")
    wanted = _split(targets)
    if any(t not in CLASSES for t in wanted):
        raise _fail(f"--targets must be a comma-separated subset of {', '.join(CLASSES)}")
    if unlabelled is not None:
        chosen = wanted or ["face"]
        _compare(unlabelled, _candidates(preset, detector, chosen, threshold), chosen, sheet, json_out, limit)
        return
    assert dataset is not None
    try:
        data = load_coco(dataset, images).head(limit)
    except DatasetError as exc:
        raise _fail(str(exc)) from None
    counts = data.counts()
    chosen = wanted or [c for c in CLASSES if counts[c]["counted"]] or ["face"]
    _labelled(data, _candidates(preset, detector, chosen, threshold), chosen, json_out, plot)


def _candidates(presets: list[str] | None, detectors: list[str] | None, targets: list[str],
                thresholds: list[float] | None) -> list[Candidate]:
    from worker.evaluation.engines import CandidateError, build_candidates

    try:
        return build_candidates(get_settings(), presets=presets or (), detectors=detectors or (), targets=targets,
                                thresholds=thresholds or ())
    except CandidateError as exc:
        raise _fail(str(exc)) from None


def _labelled(data: Dataset, candidates: Sequence[Candidate], targets: list[str], json_out: Path | None,
              plot: Path | None) -> None:
    from worker.engine.errors import EngineError
    from worker.evaluation.dataset import DatasetError
    from worker.evaluation.evaluate import evaluate
    from worker.evaluation.table import report_table

    reports = []
    try:
        with _progress() as progress:
            for c in candidates:
                task = progress.add_task(c.name, total=len(data.images))
                reports.append(evaluate(data, c.predict, name=c.name, targets=targets,
                                        progress=partial(_advance, progress, task)))
    except (DatasetError, EngineError) as exc:
        raise _fail(str(exc)) from None
    out.print(report_table(reports))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"dataset": data.name, "labelled_boxes": data.counts(),
                                        "reports": [r.to_dict(curves=True) for r in reports]}, indent=1))
        console.print(f"figures -> {json_out}")
    if plot is not None:
        try:
            from worker.evaluation.plot import write_plot
        except ImportError:
            raise _fail("--plot needs matplotlib: pip install 'veil[eval]'") from None
        write_plot(reports, plot)
        console.print(f"plot -> {plot}")


def _compare(folder: Path, candidates: Sequence[Candidate], targets: list[str], sheet: Path,
             json_out: Path | None, limit: int | None) -> None:
    from worker.evaluation.unlabelled import compare_unlabelled, image_files, write_contact_sheet

    paths = image_files(folder)[:limit]
    if not paths:
        raise _fail(f"no JPEG, PNG or WebP images under {folder}")
    with _progress() as progress:
        task = progress.add_task("comparing", total=len(paths))
        result = compare_unlabelled(paths, candidates, partial(_advance, progress, task))
    classes = targets
    table = Table("candidate", *(f"{c} boxes" for c in classes), *(f"{c} lone" for c in classes), "ms/img",
                  title=f"{result.images} unlabelled images ({len(result.unreadable)} unreadable)")
    for c in candidates:
        table.add_row(c.name, *(str(result.counts[c.name].get(k, 0)) for k in classes),
                      *(str(result.lone[c.name].get(k, 0)) for k in classes), f"{result.ms_per_image(c.name):.1f}")
    out.print(table)
    for path, code in result.unreadable:
        console.print(f"[yellow]skipped[/] {path.name}: {code}")
    if len(candidates) > 1:
        write_contact_sheet(result, sheet)
        console.print(f"contact sheet of {len(result.crops)} lone boxes -> {sheet}")
    else:
        console.print("one candidate: nothing to disagree with, so no contact sheet")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_dict(), indent=1))
        console.print(f"figures -> {json_out}")
