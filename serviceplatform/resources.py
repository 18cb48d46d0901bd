"""Where the data files the installed platform reads are: the one place that knows.

The source tree keeps them at its top, where the design puts them: ``wsdl/`` (the contracts
the platform serves) and ``routing_tables/`` (the sandbox's sample routing tables and
agreements). ``pyproject.toml`` installs them as the data-only packages
``serviceplatform.wsdl`` and ``serviceplatform.sandbox.routing_tables``, so
``importlib.resources`` finds them wherever the package is installed:

- from a wheel: below ``site-packages/serviceplatform/``;
- in an editable install (``pip install -e .``, what ``make`` does): the source folders
  themselves, so an edit to ``routing_tables/*.csv`` reaches a running ``make sandbox``.

Callers get real directories, not ``importlib.resources`` traversables: a WSDL imports its
XSDs by relative path, and the sandbox watches the routing tables for changes, so the files
must be on disk side by side. ``as_file`` would copy one file out of an archive and break
both; an installation that does not unpack files (a zip import) is refused with a clear
error instead.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Final

from serviceplatform.errors import ConfigurationError

CONTRACTS_PACKAGE: Final = "serviceplatform.wsdl"
SAMPLE_ROUTING_PACKAGE: Final = "serviceplatform.sandbox.routing_tables"


def package_directory(package: str) -> Path:
    """The directory on disk of the installed data package ``package``."""
    root = files(package)
    if not isinstance(root, Path):
        raise ConfigurationError(
            f"{package} is not installed as files on disk ({root!r}): install the "
            "serviceplatform wheel into a virtual environment (pip install)"
        )
    return root


def contract(*parts: str) -> Path:
    """A contract document below ``wsdl/``, e.g. ``contract("sf2250", "NemSMS.wsdl")``."""
    return package_directory(CONTRACTS_PACKAGE).joinpath(*parts)


def sample_routing_tables() -> Path:
    """The sandbox's sample routing tables and agreements (``routing_tables/``).

    Sample data: only the sandbox (and tests) use it; an installation configures its own
    ``[routing] directory``.
    """
    return package_directory(SAMPLE_ROUTING_PACKAGE)
