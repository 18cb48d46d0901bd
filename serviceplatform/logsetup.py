"""Logging for the platform's processes: one format, the configured level, CPRs masked."""

from __future__ import annotations

import logging

from serviceplatform import logmask


def configure(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_serviceplatform", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
        )
        handler._serviceplatform = True  # type: ignore[attr-defined]
        root.addHandler(handler)
        logmask.install(handler)
    root.setLevel(level.upper())
