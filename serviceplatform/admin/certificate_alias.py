"""The check an agreement's outward certificate alias passes before it is configured.

Shared by the admin API and ``serviceplatform agreements configure``: an alias that is not in
the certificate store (a typo) or whose certificate has expired is refused with its own code,
instead of being stored and found only as SP-420/SP-421 on the first real call.
"""

from __future__ import annotations

from serviceplatform.errors import (
    CertificateAliasExpired,
    CertificateAliasUnknown,
    CertificateUnavailable,
)
from serviceplatform.outbound.certstore import CertificateStore


class AliasChecker:
    """Callable ``check(alias)``: raises SP-609 (not in the store) or SP-610 (expired)."""

    def __init__(self, store: CertificateStore) -> None:
        self._store = store

    def __call__(self, alias: str) -> None:
        try:
            info = self._store.info(alias)
        except CertificateUnavailable:
            raise CertificateAliasUnknown(
                f"{alias!r} (the store {self._store.directory} has "
                f"{', '.join(i.alias for i in self._store.list()) or 'no certificates'})"
            ) from None
        if info.expired:
            until = f"{info.not_after:%Y-%m-%d}" if info.not_after else "?"
            raise CertificateAliasExpired(f"{alias!r} expired on {until}")
