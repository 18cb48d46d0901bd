"""The SQLite writer gate: writers of all processes take turns, each process its own lock."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from serviceplatform.store.writer_gate import WriterGate


def _hold(path: str, seconds: float, started: object) -> None:
    gate = WriterGate(Path(path))
    with gate.hold():
        started.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_threads_of_one_process_take_turns(tmp_path: Path) -> None:
    gate = WriterGate(tmp_path / "db.sqlite")
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with gate.hold():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.01)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1


def test_another_process_waits_for_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    context = multiprocessing.get_context("fork")
    started = context.Event()
    other = context.Process(target=_hold, args=(str(path), 0.3, started))
    other.start()
    try:
        assert started.wait(10)
        began = time.monotonic()
        with WriterGate(path).hold():
            waited = time.monotonic() - began
        assert waited > 0.15  # it had to wait for the other process to let go
    finally:
        other.join(10)
    assert other.exitcode == 0
