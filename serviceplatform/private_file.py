"""Writing files with secrets or personal data: owner-only (0600) from the first byte.

The sandbox's ``sandbox.json`` holds every admin bearer token, ``platform.toml`` the Domibus
password and ``admin-tokens.json`` the tokens themselves; ``routing export -o FILE`` writes
routing subjects, CPR numbers among them. Written with ``write_text`` they would be 0644
under the usual umask, and a ``chmod`` afterwards leaves a moment in which another local
account can read them; so the file is created 0600 beside its target and renamed over it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

PRIVATE_MODE: Final = 0o600


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text`` (UTF-8), mode 0600 throughout."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_MODE)
    try:
        # A leftover temporary file keeps its old mode through O_TRUNC; this one may not.
        os.fchmod(fd, PRIVATE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_private(path: Path) -> None:
    """Take group and other permissions away from an existing ``path`` (a file an older
    sandbox wrote 0644); nothing when it does not exist."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, PRIVATE_MODE)
