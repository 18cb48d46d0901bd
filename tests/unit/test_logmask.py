"""CPR numbers never reach log output in clear."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from serviceplatform import logmask
from serviceplatform.logmask import CprMaskingFilter, mask_cpr, mask_cpr_numbers, mask_subject


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("0101901234", "010190****"),
        ("cpr=0101901234.", "cpr=010190****."),
        ("010190-1234", "010190****"),
        ("/register/2250001/boks/0101901234/x", "/register/2250001/boks/010190****/x"),
        ("a 0101901234 and 3112995678", "a 010190**** and 311299****"),
        ("cvr 29189846", "cvr 29189846"),
        ("uuid 0d7fcabb-3505-4065-a006-d48b1cf50cc2", "uuid 0d7fcabb-3505-4065-a006-d48b1cf50cc2"),
        ("uuid 12345678-1234-1234-1234-123456789012", "uuid 12345678-1234-1234-1234-123456789012"),
        ("uuid ab010190-1234-1234-1234-ab0101901234", "uuid ab010190-1234-1234-1234-ab0101901234"),
        ("long 01019012345", "long 01019012345"),
        ("sysid 2250001", "sysid 2250001"),
    ],
)
def test_mask_cpr_numbers(text: str, masked: str) -> None:
    assert mask_cpr_numbers(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("cpr 0101901234, cvr 29189846", "cpr 010190****, cvr 29189846"),
        ("/boks/0101901234/x", "/boks/010190****/x"),
        # A peer's text glues numbers to words: masked all the same.
        ("boks0101901234x", "boks010190****x"),
        ("01019012345", "01019012345"),
        ("010190-1234", "010190-1234"),
    ],
)
def test_mask_cpr_numbers_touching_letters(text: str, masked: str) -> None:
    assert mask_cpr_numbers(text, touching_letters=True) == masked


def test_mask_cpr() -> None:
    assert mask_cpr("0101901234") == "010190****"
    assert mask_cpr("123") == "**********"
    assert mask_cpr("01019012345") == "**********"


def test_mask_subject_shows_cvr_numbers_only() -> None:
    assert mask_subject("29189846") == "29189846"
    assert mask_subject("0101901234") == "010190****"
    assert mask_subject("123") == "**********"
    assert mask_subject(None) is None


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A non-propagating logger writing to a string, restored afterwards.

    pytest attaches its own capture handlers to it during the test; they may pick up the
    filter, which teardown removes again.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger("sp-test-root")
    # Only our handler: pytest's capture handlers must not pick up (and keep) our filters.
    saved = root.handlers, root.filters, root.propagate
    root.handlers, root.filters, root.propagate = [handler], [], False
    root.setLevel(logging.DEBUG)
    try:
        yield root, stream
    finally:
        for h in root.handlers + logging.getLogger().handlers:
            h.filters = [f for f in h.filters if not isinstance(f, CprMaskingFilter)]
        root.handlers, root.filters, root.propagate = saved


def test_arguments_are_masked_in_the_formatted_message(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    root, stream = captured
    logmask.install(root)
    root.info("cpr %s", "0101901234")
    assert stream.getvalue() == "INFO cpr 010190****\n"


def test_records_propagated_from_child_loggers_are_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    root, stream = captured
    logmask.install(root)
    logging.getLogger("sp-test-root.child.grandchild").warning("boks %s/%d", "0101901234", 7)
    assert stream.getvalue() == "WARNING boks 010190****/7\n"


def test_installing_on_a_handler(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root, stream = captured
    handler = next(h for h in root.handlers if getattr(h, "stream", None) is stream)
    first = logmask.install(handler)
    assert logmask.install(handler) is first
    assert sum(isinstance(f, CprMaskingFilter) for f in handler.filters) == 1
    logging.getLogger("sp-test-root.x").error("in message 311299-5678 itself")
    assert stream.getvalue() == "ERROR in message 311299**** itself\n"
    handler.removeFilter(first)


def test_tracebacks_are_masked(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root, stream = captured
    logmask.install(root)
    try:
        raise ValueError("bad subject 0101901234")
    except ValueError:
        root.exception("failed for %s", "0202901234")
    output = stream.getvalue()
    assert "ValueError: bad subject 010190****" in output
    assert "failed for 020290****" in output
    assert "0101901234" not in output and "0202901234" not in output


def test_messages_without_cpr_are_left_alone(captured: tuple[logging.Logger, io.StringIO]) -> None:
    root, stream = captured
    logmask.install(root)
    root.info("authority %s sysid %s", "29189846", "2250001")
    assert stream.getvalue() == "INFO authority 29189846 sysid 2250001\n"


def test_a_broken_format_string_still_logs_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    root, stream = captured
    logmask.install(root)
    root.info("two %s %s", "0101901234")
    assert "010190****" in stream.getvalue()
    assert "0101901234" not in stream.getvalue()


def test_install_defaults_to_the_root_logger_and_is_idempotent() -> None:
    root = logging.getLogger()
    before = list(root.filters)
    try:
        first = logmask.install()
        assert logmask.install() is first
        assert first in root.filters
        assert all(any(isinstance(f, CprMaskingFilter) for f in h.filters) for h in root.handlers)
    finally:
        for handler in root.handlers:
            handler.filters = [f for f in handler.filters if not isinstance(f, CprMaskingFilter)]
        root.filters = before


_PRODUCTION_LOGGING = """
import logging
from serviceplatform import logsetup

logsetup.configure("INFO")
log = logging.getLogger("integrations.anything.deep")


def lookup():
    log.warning("looking up", stack_info=True)  # subject 0303901234


log.info("subject %s", "0101901234")
try:
    raise ValueError("no such citizen 0202901234")
except ValueError:
    log.exception("failed")
lookup()
"""


def test_production_logging_masks_every_logger_traceback_and_stack(tmp_path: Path) -> None:
    """``logsetup.configure`` (what ``serve`` runs) in a fresh interpreter, as in production:
    a record from any logger, its traceback and its ``stack_info`` come out masked. (The SOAP
    front masks its own line itself, so a served call alone would not show this.)"""
    script = tmp_path / "production_logging.py"
    script.write_text(_PRODUCTION_LOGGING, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    output = result.stderr
    assert "subject 010190****" in output
    assert "ValueError: no such citizen 020290****" in output
    assert "Stack (most recent call last)" in output and "subject 030390****" in output
    for cpr in ("0101901234", "0202901234", "0303901234"):
        assert cpr not in output, output
