"""A sandbox's business clock, shared by its register and the commands run with ``--workdir``.

The simulated register serves only today's subscription list, so trying a second night in a
sandbox would mean waiting a day. The register's ``clock`` hook therefore also writes the
instant it fixes to ``DIR/clock.json`` (``{"now": "<ISO 8601>"}``, 0600; removed when the
hook returns to the running clock), and a command run with ``--workdir DIR`` takes it as the
platform's business clock: the list date, NemSMS's sending hours and its service window.
Security checks, certificates, leases and audit keep the real clock.

Only ``--workdir`` reads the file: a platform run with ``--config`` (production) never does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from serviceplatform.errors import ConfigurationError

CLOCK_FILE: Final = "clock.json"


def read_fixed_clock(workdir: Path) -> datetime | None:
    """The instant the sandbox in ``workdir`` fixed its clock at, or None (running clock)."""
    try:
        data = json.loads((workdir / CLOCK_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{workdir / CLOCK_FILE} cannot be read: {exc}") from exc
    value = data.get("now") if isinstance(data, dict) else None
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"{workdir / CLOCK_FILE}: {exc}") from exc
    if moment.utcoffset() is None:
        raise ConfigurationError(f"{workdir / CLOCK_FILE}: the instant has no UTC offset")
    return moment


def write_fixed_clock(workdir: Path, moment: datetime | None) -> None:
    """Fix the sandbox's clock at ``moment`` (aware), or go back to the running clock."""
    path = workdir / CLOCK_FILE
    if moment is None:
        path.unlink(missing_ok=True)
        return
    temporary = path.with_suffix(".json.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump({"now": moment.isoformat()}, handle)
    temporary.replace(path)


def workdir_business_clock(workdir: Path) -> Callable[[], datetime] | None:
    """The business clock of commands acting on the sandbox in ``workdir``; None if not fixed.

    Read once per command: a command acts at one business instant.
    """
    moment = read_fixed_clock(workdir)
    return None if moment is None else (lambda: moment)
