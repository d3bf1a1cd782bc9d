"""`veil tenants` and `veil keys`: a key printed once works, is listed without its secret, and can be revoked."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from cli.main import app
from shared import api_keys
from shared.db import make_engine
from shared.migrate import upgrade
from shared.settings import Settings, get_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("VEIL_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    s = get_settings()
    upgrade(make_engine(s))
    yield s
    get_settings.cache_clear()


def test_create_list_and_revoke_a_key(settings: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["tenants", "create", "acme", "--max-active-jobs", "5"])
    assert created.exit_code == 0 and "whsec_" in created.output
    assert runner.invoke(app, ["tenants", "create", "acme"]).exit_code == 1  # exists already

    made = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "jobs:read", "--scope", "jobs:write"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    with Session(make_engine(settings)) as session:
        principal = api_keys.authenticate(session=session, presented=key)
    assert principal is not None and principal.tenant_id == "acme"
    assert principal.scopes == {"jobs:read", "jobs:write"}

    listed = runner.invoke(app, ["keys", "list", "--tenant", "acme"])
    assert key_id in listed.output and key.split("_", 2)[2] not in listed.output  # the secret is never shown again

    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    with Session(make_engine(settings)) as session:
        assert api_keys.authenticate(session=session, presented=key) is None
    assert runner.invoke(app, ["keys", "revoke", "0000000000000000"]).exit_code == 1


def test_unknown_tenant_and_scope_are_refused(settings: Settings) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "create", "--tenant", "nobody", "--scope", "jobs:read"]).exit_code == 1
    runner.invoke(app, ["tenants", "create", "acme"])
    assert runner.invoke(app, ["keys", "create", "--tenant", "acme", "--scope", "root"]).exit_code == 2
