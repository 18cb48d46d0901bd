"""``with`` support for the objects that hold connections: leaving the block closes them."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """Base for clients and transports: ``close()`` releases, ``with`` calls it on the way out."""

    def close(self) -> None:
        """Release connections; subclasses extend it."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
