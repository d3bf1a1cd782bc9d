"""Fixtures for every test."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _unfreeze_the_heap() -> Iterator[None]:
    # The CLI and the worker freeze their start-up heap (worker.startup_heap); a test that runs them in this
    # process must not leave the whole test session's objects out of the collector's reach.
    yield
    gc.unfreeze()
