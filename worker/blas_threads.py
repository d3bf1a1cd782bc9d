"""One OpenBLAS thread per process unless the environment says otherwise.

numpy and OpenCV each bundle their own OpenBLAS, and each starts a pool of (cores - 1) threads when it loads,
which then busy-wait for work. Veil has no BLAS work to give them (one small score product when detector passes
are fused), so on a two-core machine they only took a core from the video decoder, the detector and the
encoder: the 38-frame 1280x720 clip with faces used 2.68 CPU-seconds with them and 2.38 without (means of six
runs). OpenBLAS reads the variable once, when it loads, so this must run before numpy or cv2 is imported.
"""

from __future__ import annotations

import os

BLAS_THREADS_VAR = "OPENBLAS_NUM_THREADS"


def limit_blas_threads() -> None:
    """Set OPENBLAS_NUM_THREADS=1 unless it is already set; an operator's own value wins. Where numpy or cv2 is
    already loaded it comes too late for this process, but its child processes still inherit it."""
    os.environ.setdefault(BLAS_THREADS_VAR, "1")
