"""One Rich table for one or more evaluation reports side by side: a row per class, candidate and box size."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from worker.evaluation.evaluate import EvalReport

COLUMNS = ("class", "candidate", "size", "boxes", "C80", "recall", "precision", "AP50", "false masks/img",
           "ms/img")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def report_table(reports: Sequence[EvalReport]) -> Table:
    """Percentages for C80, recall, precision and AP50; sizes are labelled box heights in pixels."""
    title = f"{reports[0].dataset}, {reports[0].images} images" if reports else "no reports"
    table = Table(*COLUMNS, title=title)
    for col in table.columns[3:]:
        col.justify = "right"
    classes = list(dict.fromkeys(c for r in reports for c in r.classes))
    for cls in classes:
        for report in reports:
            buckets = report.classes.get(cls)
            if buckets is None:
                continue
            for size, m in buckets.items():
                first = size == "all"
                fm = "-" if m.false_masks_per_image is None else f"{m.false_masks_per_image:.2f}"
                table.add_row(
                    cls if first else "", report.name if first else "", size, str(m.counted), _pct(m.c80),
                    _pct(m.recall), _pct(m.precision), _pct(m.ap50), fm,
                    f"{report.ms_per_image:.1f}" if first else "",
                    style="bold" if first else "dim",
                )
            table.add_section()
    return table
