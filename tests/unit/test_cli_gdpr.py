"""`veil gdpr`: a request made from the shell is recorded, published, listed and followed, never echoing the
subject's identifiers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from shared import tenants
from shared.db import make_engine
from shared.migrate import upgrade
from shared.settings import Settings, get_settings
from shared.tables import SubjectRequest


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("VEIL_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # kombu's filesystem transport keeps its `control/` folder in the working directory
    get_settings.cache_clear()
    s = get_settings()
    engine = make_engine(s)
    upgrade(engine)
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id="acme")
    yield s
    get_settings.cache_clear()


def test_access_request_from_the_shell(settings: Settings) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["gdpr", "access", "--tenant", "acme", "--ref", "vehicle=V-4711",
                               "--from", "2026-03-03T08:00:00+01:00", "--to", "2026-03-03T09:00", "--reference", "T-1"])
    assert made.exit_code == 0, made.output
    request_id = uuid.UUID(made.stdout.strip().splitlines()[-1])
    assert "V-4711" not in made.output and "due" in made.output
    with Session(make_engine(settings)) as session:
        row = session.get(SubjectRequest, request_id)
        assert row is not None and row.type == "access" and row.status == "received" and row.reference == "T-1"
        assert len(row.subject_ref_hashes) == 1 and row.recorded_to is not None and row.recorded_to.hour == 9
    # Published on the embedded broker's `gdpr` queue, for a worker to pick up.
    queued = [p.read_text() for p in (settings.broker_folder / "queue").iterdir()]
    assert any(str(request_id) in m and "gdpr.access" in m for m in queued)

    status = runner.invoke(app, ["gdpr", "status", str(request_id)])
    assert status.exit_code == 0 and json.loads(status.stdout)["status"] == "received"
    assert "V-4711" not in status.output
    listed = runner.invoke(app, ["gdpr", "list", "--tenant", "acme", "--open"])
    assert listed.exit_code == 0 and str(request_id) in listed.output
    assert str(request_id) not in runner.invoke(app, ["gdpr", "list", "--tenant", "acme", "--overdue"]).output
    assert runner.invoke(app, ["gdpr", "receipt", str(request_id)]).exit_code == 1  # not completed yet


def test_bad_criteria_are_refused(settings: Settings) -> None:
    runner = CliRunner()
    for args in (["--ref", "V-4711"], ["--from", "yesterday"], ["--job", "42"], []):
        result = runner.invoke(app, ["gdpr", "erase", "--tenant", "acme", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "V-4711" not in result.output
    assert runner.invoke(app, ["gdpr", "erase", "--tenant", "nobody", "--job", str(uuid.uuid4())]).exit_code == 1
    assert runner.invoke(app, ["gdpr", "status", str(uuid.uuid4())]).exit_code == 1
