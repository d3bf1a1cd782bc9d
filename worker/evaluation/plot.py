"""One matplotlib figure for reports side by side: per class, precision-recall curves and recall by box size."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from worker.evaluation.evaluate import EvalReport
from worker.evaluation.metrics import SIZE_BUCKETS


def write_plot(reports: Sequence[EvalReport], path: Path) -> None:
    """PNG at `path`: a row per class, PR curves on the left, recall and C80 by size on the right."""
    classes = list(dict.fromkeys(c for r in reports for c in r.classes))
    # A bare Figure, not pyplot: no global figure state and no GUI backend, only the file.
    fig = Figure(figsize=(13, 5.5 * len(classes)))
    axes = fig.subplots(len(classes), 2, squeeze=False)
    sizes = list(SIZE_BUCKETS)
    width = 0.8 / max(1, len(reports))
    for row, cls in enumerate(classes):
        pr, by_size = axes[row]
        for i, report in enumerate(reports):
            buckets = report.classes.get(cls)
            if buckets is None:
                continue
            m = buckets["all"]
            ap = "-" if m.ap50 is None else f"{100 * m.ap50:.1f}"
            pr.plot(m.curve_recall, m.curve_precision, label=f"{report.name} (AP50 {ap})")
            recall = [np.nan if buckets[s].recall is None else buckets[s].recall for s in sizes]
            c80 = [np.nan if buckets[s].c80 is None else buckets[s].c80 for s in sizes]
            x = np.arange(len(sizes)) + (i - (len(reports) - 1) / 2) * width
            bars = by_size.bar(x, recall, width, label=report.name)
            by_size.scatter(x, c80, marker="D", s=40, color=bars.patches[0].get_facecolor(), edgecolors="black",
                            zorder=3)
        pr.set(title=f"{cls}: precision-recall at IoU 0.5", xlabel="recall", ylabel="precision",
               xlim=(0, 1), ylim=(0, 1.02))
        pr.grid(alpha=0.3)
        pr.legend(loc="lower left", fontsize="small")
        by_size.set(title=f"{cls}: recall@0.5 (bars), C80 (diamonds) by box height",
                    ylabel="share of labelled boxes", ylim=(0, 1.02))
        by_size.set_xticks(np.arange(len(sizes)), sizes)
        by_size.grid(axis="y", alpha=0.3)
        by_size.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
