"""Where the SAML token a distributor message carries comes from.

``[distributor.amqp] token_source`` names the source through ``registry.TOKEN_SOURCES``: the
product's own ``file`` source reads what the operator's STS client keeps fresh; the sandbox
adds one that mints tokens with a test STS key, without the product importing the sandbox.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, Protocol

from serviceplatform.config import Settings
from serviceplatform.errors import ConfigurationError

_CVR: Final = re.compile(r"[0-9]{8}")


class TokenSource(Protocol):
    """Gives the SAML token (assertion XML as text) to send for an authority."""

    def token_for(self, authority_cvr: str) -> str: ...


class FileTokenSource:
    """Reads ``directory/<CVR>.xml`` on every call; an STS client outside keeps it fresh."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileTokenSource:
        return cls(settings.path(settings.distributor.amqp.token_dir))

    def token_for(self, authority_cvr: str) -> str:
        if not _CVR.fullmatch(authority_cvr):
            raise ConfigurationError(f"authority CVR {authority_cvr!r} is not 8 digits")
        path = self.directory / f"{authority_cvr}.xml"
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigurationError(f"no token file {path} for this authority") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"the token file {path} cannot be read: {exc}") from exc
        if not text:
            raise ConfigurationError(f"the token file {path} is empty")
        return text


def token_source_from_settings(settings: Settings) -> TokenSource:
    """The token source ``[distributor.amqp] token_source`` names, built from ``settings``."""
    # Imported here: the registry imports the integration declarations, which import this.
    from serviceplatform.registry import TOKEN_SOURCES, load_attribute

    name = settings.distributor.amqp.token_source
    target = TOKEN_SOURCES.get(name)
    if target is None:
        choices = ", ".join(repr(known) for known in TOKEN_SOURCES)
        raise ConfigurationError(f"[distributor.amqp] token_source = {name!r}: use {choices}")
    build = load_attribute(target, f"token source {name!r}")
    source: TokenSource = build(settings)
    return source
