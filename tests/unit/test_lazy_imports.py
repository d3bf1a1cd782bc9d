"""What building engines in a fresh process imports: a CLI or benchmark video run pays for every import."""

from __future__ import annotations

import subprocess
import sys


def test_worker_context_leaves_database_and_storage_clients_unloaded() -> None:
    code = ("import sys, worker.context; "
            "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'boto3') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
