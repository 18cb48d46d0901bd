"""``subscriptions run``'s progress without a terminal: plain lines on stderr, never a bar.

Under cron, systemd or a pipe the bars were hidden and a night of a million entries was
silent for minutes while storing, diffing and delivering. The command's wiring is run with
click's runner (stderr is no terminal there) and a job that reports as the nightly does; the
line reporter is driven by a manual clock.
"""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from integrations.sf2250 import commands
from integrations.sf2250.nightly import AuthorityResult, Progress, RunSummary
from serviceplatform.commands.context import CliContext
from serviceplatform.config import Settings
from serviceplatform.relay import RelayResult

CVR = "29189846"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_lines_at_each_phase_start_and_end_and_at_most_every_ten_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    lines = commands._Lines(stream, clock=clock)
    lines.authority(CVR, 3)
    for _ in range(3):
        clock.now += 4.0
        lines.part()
    lines.phase(CVR, "diffing", 1000)
    for _ in range(10):
        clock.now += 3.0
        lines.advance(100)
    lines.finished(AuthorityResult(CVR, "complete", entries=1000))
    lines.delivering(0)
    lines.close()
    assert stream.getvalue().splitlines() == [
        f"  {CVR} fetching: 3 parts",
        f"  {CVR} fetching: 3 of 3 parts (12 s)",  # the first 10 s since the last line
        f"  {CVR} fetching done: 3 of 3 parts (12 s)",
        f"  {CVR} diffing: 1000 entries",
        f"  {CVR} diffing: 400 of 1000 entries (12 s)",
        f"  {CVR} diffing: 800 of 1000 entries (24 s)",
        f"  {CVR} diffing done: 1000 of 1000 entries (30 s)",
        f"  {CVR} complete",
        "  delivering: 0 messages",
        "  delivering done: 0 of 0 messages (0 s)",
    ]


class FakeOutbox:
    def __init__(self) -> None:
        self.pending = 250

    def counts(self, topic: str) -> Any:
        return self


class FakeJob:
    """Reports as NightlyDiff does: an authority's parts, storing, diffing; then delivery."""

    def __init__(self) -> None:
        self.outbox = FakeOutbox()

    def run(self, *, progress: Progress, **_: Any) -> RunSummary:
        progress.authority(CVR, 2)
        progress.part()
        progress.part()
        for phase in ("storing", "diffing"):
            progress.phase(CVR, phase, 5000)
            progress.advance(5000)
        result = AuthorityResult(CVR, "complete", entries=5000, subscribed=250, messages=250)
        progress.finished(result)
        return RunSummary(list_date=date(2026, 12, 7), lease="acquired", authorities=[result])

    def deliver(self, on_delivered: Any) -> RelayResult:
        on_delivered(250)
        self.outbox.pending = 0
        return RelayResult(delivered=250)


def test_run_without_a_terminal_prints_lines_on_stderr_and_only_the_summary_on_stdout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(commands, "_job", lambda obj: FakeJob())
    obj = CliContext(Settings(base_dir=str(tmp_path)))
    result = CliRunner().invoke(commands.subscriptions, ["run"], obj=obj)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"{CVR}  complete         entries     5000  +250 -0  messages 250",
        "2026-12-07: lists fetched 1, entries 5000, changes 250, messages delivered 250, pending 0",
    ]
    said = result.stderr.splitlines()
    assert said[0] == f"  {CVR} fetching: 2 parts"
    for start in (
        f"  {CVR} fetching done: 2 of 2 parts",
        f"  {CVR} storing: 5000 entries",
        f"  {CVR} storing done: 5000 of 5000 entries",
        f"  {CVR} diffing: 5000 entries",
        f"  {CVR} diffing done: 5000 of 5000 entries",
        f"  {CVR} complete",
        "  delivering: 250 messages",
        "  delivering done: 250 of 250 messages",
    ):
        assert any(line.startswith(start) for line in said), (start, said)
    # No bar: neither its carriage returns nor terminal escapes.
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
