"""OpenBLAS pools: none in a process that loads the worker or the CLI first, unless the operator asks for one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The threads alive after numpy and cv2 load, and the variable as the process ends up with it.
PROBE = ("import numpy, cv2, os; "
         "print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS', '-'))")


def run(first: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = (f"import {first}; " if first else "") + PROBE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**clean, **env}).stdout.split()
    return int(out[0]), out[1]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in Linux's /proc")
@pytest.mark.parametrize("first", ["worker", "cli"])
def test_loading_the_worker_or_cli_first_leaves_numpy_and_cv2_without_blas_threads(first: str) -> None:
    assert run(first) == (1, "1")


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2,
                    reason="OpenBLAS starts pool threads only on more than one core")
def test_without_it_numpy_and_cv2_start_blas_threads() -> None:
    threads, var = run("")
    assert var == "-" and threads > 1  # what the limit removes


def test_an_operators_own_value_wins() -> None:
    assert run("worker", OPENBLAS_NUM_THREADS="2")[1] == "2"
