"""The example commands the README gives start as written (run from the project root)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    shlex.split(line.split("#", 1)[0])
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    if re.match(r"\.venv/bin/python \S", line)
]


def test_the_readme_names_the_examples() -> None:
    assert len(COMMANDS) >= 3


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[1:]) for c in COMMANDS])
def test_an_example_command_starts(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, *argv[1:], "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
