"""Reading a streamed HTTP answer whole, but never more than a size limit or past a deadline.

A peer that answers with more than the platform will hold (or keeps trickling bytes) must not
make a call use unbounded memory or time: the clients stream (``stream=True``) and read the
body through :func:`read_bounded`, which stops at the first byte over the limit.
"""

from __future__ import annotations

import time
from typing import Final

import requests

#: Bytes read from the socket at a time.
CHUNK: Final = 64 * 1024


class AnswerTooLarge(Exception):
    """The answer exceeds the size limit (callers translate it to their platform error)."""

    def __init__(self, size: int) -> None:
        super().__init__(f"answer larger than the limit ({size} bytes or more)")


class AnswerOverdue(Exception):
    """The body was still arriving when the deadline passed."""

    def __init__(self) -> None:
        super().__init__("the answer did not arrive within the budget")


def read_bounded(
    response: requests.Response, max_bytes: int, *, deadline: float | None = None
) -> bytes:
    """The whole body of ``response``; ``AnswerTooLarge`` past ``max_bytes`` (declared or
    read), ``AnswerOverdue`` once ``time.monotonic()`` passes ``deadline``."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise AnswerTooLarge(int(declared))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise AnswerTooLarge(size)
        if deadline is not None and time.monotonic() > deadline:
            raise AnswerOverdue()
        chunks.append(chunk)
    return b"".join(chunks)
