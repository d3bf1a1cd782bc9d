"""The worker: the Celery app, thin tasks, and the engine they call."""

from worker.blas_threads import limit_blas_threads

# Before anything below this package imports numpy or cv2: see worker/blas_threads.py.
limit_blas_threads()
