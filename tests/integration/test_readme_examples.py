"""The example commands the README gives, run as written against a running sandbox.

Each line of the README that starts ``.venv/bin/python -m examples.`` is run from the project
root, in its own process, with ``--workdir`` naming this test's sandbox (the README's default is
``.sandbox``), and must succeed doing what it says. The SMS example sends only between 08:00
and 22:00 Danish time, so it is pointed at the sandbox's platform served with its business
clock fixed at noon (``test_sandbox.print_service_at``): the same at any hour.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_sandbox import (
    WEDNESDAY_NOON,
    print_service_at,
    session,
    start_sandbox,
    stop,
    wait_for_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    shlex.split(line.split("#", 1)[0])
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    if re.match(r"\.venv/bin/python -m examples\.", line)
]
#: What each example prints when it did its job.
DONE = {
    "examples.sf2250_client": "TilmeldNemSMS:",
    "examples.sf1600_sms_client": "afsendBrev:",
    "examples.oots_client": "evidence: ",
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    workdir = tmp_path_factory.mktemp("readme-sandbox")
    process = start_sandbox(workdir)
    try:
        yield workdir, wait_for_manifest(workdir, process)
    finally:
        assert stop(process) == 0


def test_the_readme_names_the_examples() -> None:
    assert [argv[2] for argv in COMMANDS] == list(DONE)


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[1:]) for c in COMMANDS])
def test_an_example_command_does_what_the_readme_says(
    argv: list[str], sandbox: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    workdir, data = sandbox
    module = argv[2]

    def run(target: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv[1:], "--workdir", str(target)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    if module == "examples.sf1600_sms_client":
        # The citizen the example sends to, subscribed as the README's first example does.
        subscribe = next(c for c in COMMANDS if c[2] == "examples.sf2250_client")
        subprocess.run(
            [sys.executable, *subscribe[1:], "--workdir", str(workdir)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=120,
        )
        control = data["peers"]["nemsms"]["control_url"]
        session().delete(control + "/requests", timeout=5)
        with print_service_at(workdir, data, WEDNESDAY_NOON, tmp_path / "noon") as at_noon:
            done = run(at_noon)
            sent = [r["method"] for r in session().get(control + "/requests", timeout=5).json()]
        assert sent == ["GET", "PUT"]
    else:
        done = run(workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert DONE[module] in done.stdout, done.stdout


def test_the_readme_command_line_names_every_command() -> None:
    """The README's "Command line" block is where an operator of the wheel looks first: every
    command ``serviceplatform --help`` lists has a line there."""
    from serviceplatform.cli import cli

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Command line", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    named = {line.split()[1] for line in block.splitlines() if line.startswith("serviceplatform ")}
    assert set(cli.commands) - named == set()
