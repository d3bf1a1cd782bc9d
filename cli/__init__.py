"""The `veil` command line."""

from worker.blas_threads import limit_blas_threads

# `veil anonymize`, `veil worker` and `veil serve` run the engine in this process: see worker/blas_threads.py.
limit_blas_threads()
