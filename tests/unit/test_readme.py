"""The README's settings table documents every setting there is, and nothing that is not."""

from __future__ import annotations

import re
from pathlib import Path

from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_settings_table_matches_the_settings_class() -> None:
    rows = re.findall(r"^\| `(VEIL_[A-Z0-9_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert sorted(rows) == sorted(f"VEIL_{name.upper()}" for name in Settings.model_fields)


def test_readme_names_the_two_commands_that_exist() -> None:
    text = README.read_text()
    for script in ("scripts/serve", "scripts/test"):
        assert f"./{script}" in text
        assert (README.parent / script).stat().st_mode & 0o111
