"""What ``pyproject.toml`` ships, checked without building: every package, and the data folders.

Building and installing the wheel for real is ``tests/integration/test_wheel_install.py``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from serviceplatform import resources
from serviceplatform.registry import soap_services

PROJECT = Path(__file__).resolve().parents[2]
#: The data folders at the top of the source tree and the packages they are installed as.
DATA_PACKAGES = {
    resources.CONTRACTS_PACKAGE: "wsdl",
    resources.SAMPLE_ROUTING_PACKAGE: "routing_tables",
}


def _setuptools() -> dict[str, Any]:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    setuptools: dict[str, Any] = config["tool"]["setuptools"]
    return setuptools


def _code_packages() -> set[str]:
    found = set()
    for top in ("serviceplatform", "integrations"):
        for init in (PROJECT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(PROJECT).parts))
    return found


def test_every_code_package_and_both_data_folders_are_listed() -> None:
    listed = set(_setuptools()["packages"])
    missing = _code_packages() - listed
    assert not missing, f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml"
    assert listed - _code_packages() == set(DATA_PACKAGES)


def test_the_data_packages_are_the_source_folders_in_an_editable_install() -> None:
    assert _setuptools()["package-dir"] == DATA_PACKAGES
    # make installs editable: an edit to routing_tables/*.csv must reach a running sandbox.
    assert resources.sample_routing_tables() == PROJECT / "routing_tables"
    assert resources.contract() == PROJECT / "wsdl"
    assert (resources.sample_routing_tables() / "agreements.toml").is_file()


def test_every_served_contract_is_a_packaged_file() -> None:
    contracts = resources.contract()
    for service in soap_services():
        assert service.wsdl_path.is_file(), service.key
        assert service.wsdl_path.is_relative_to(contracts), service.key
