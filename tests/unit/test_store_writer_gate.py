"""The SQLite writer gate: writers of all processes take turns, each process its own lock."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

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


def _enter_after_parent(gate: WriterGate, held: object, parent_holds: object, out: object) -> None:
    assert held.wait(10)  # type: ignore[attr-defined]
    with gate.hold():
        # Still set: this process got in while the parent held the gate.
        out.value = 1 if parent_holds.is_set() else 0  # type: ignore[attr-defined]


def test_a_forked_child_opens_its_own_lock_and_waits_for_its_parent(tmp_path: Path) -> None:
    # The gate was created and used (its descriptor opened) before the fork. A child that kept
    # the parent's descriptor would share its open file description, whose flock the parent
    # holds, and would get in at once.
    gate = WriterGate(tmp_path / "db.sqlite")
    with gate.hold():
        pass
    context = multiprocessing.get_context("fork")
    held, parent_holds = context.Event(), context.Event()
    out = context.Value("i", -1)
    child = context.Process(target=_enter_after_parent, args=(gate, held, parent_holds, out))
    child.start()
    try:
        with gate.hold():
            parent_holds.set()
            held.set()
            time.sleep(0.3)  # the child's chance to get in wrongly
            parent_holds.clear()
    finally:
        child.join(10)
    assert child.exitcode == 0
    assert out.value == 0
    with gate.hold():  # and the parent's own descriptor still works after the fork
        pass


def _report_the_gate_free(gate: WriterGate, out: object) -> None:
    out.value = 0 if gate._lock.locked() else 1  # type: ignore[attr-defined]


def test_a_child_forked_while_another_thread_holds_the_gate_finds_it_free(
    tmp_path: Path,
) -> None:
    """gunicorn forks a new worker from the master, whose scheduler thread may be writing:
    the child has no such thread, so a thread lock copied held would never be released."""
    gate = WriterGate(tmp_path / "db.sqlite")
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.hold():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        context = multiprocessing.get_context("fork")
        out = context.Value("i", -1)
        child = context.Process(target=_report_the_gate_free, args=(gate, out))
        child.start()
        child.join(10)
    finally:
        release.set()
        holder.join(10)
    assert child.exitcode == 0
    assert out.value == 1
    assert not gate._lock.locked()  # the parent's holder released its own lock


def test_a_lock_file_that_cannot_be_opened_fails_the_hold_and_frees_the_gate(
    tmp_path: Path,
) -> None:
    gate = WriterGate(tmp_path / "missing" / "db.sqlite")
    with pytest.raises(FileNotFoundError), gate.hold():
        pass
    assert not gate._lock.locked()  # a thread lock left held would stop every later writer
    (tmp_path / "missing").mkdir()
    with gate.hold():
        assert (tmp_path / "missing" / "db.sqlite.writer-lock").exists()
