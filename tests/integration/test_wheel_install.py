"""The platform as it is shipped: built, installed away from the source tree, run for real.

The source (what git tracks, plus new untracked files, as in a fresh checkout) is copied to a
temporary folder, so stale ``build/`` or ``*.egg-info`` of the working tree can neither hide a
missing file nor be written to. ``python -m build`` makes the sdist and then the wheel *from
the sdist*, so both must carry what the platform reads. The wheel goes into a fresh virtual
environment (no system site-packages; its dependencies come from pip's index and cache), and
``serviceplatform sandbox`` runs from there with a clean environment and a working directory
that is not the source tree; its platform is ``serviceplatform serve`` in a child process, as in
production. A case system then calls SF2250 through a zeep client made from the served ``?wsdl``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from examples.sf2250_client import load_manifest, make_client
from serviceplatform.soap.contract_docs import WSDL_NS, XSD_NS

# Building, a fresh virtual environment and pip take about a minute; the default 120 s per
# test (a guard against hangs, not a limit on speed) is too tight for a fixture doing that.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PROJECT = Path(__file__).resolve().parents[2]
#: Source folders installed under another name, and that name's folder in the wheel.
DATA_FOLDERS = {
    "wsdl": "serviceplatform/wsdl",
    "routing_tables": "serviceplatform/sandbox/routing_tables",
}
#: What the sdist must carry besides the packages: data, docs, tests, build files.
SDIST_FOLDERS = (
    "wsdl",
    "routing_tables",
    "serviceplatform",
    "integrations",
    "docs",
    "examples",
    "bench",
    "tests",
)
SDIST_FILES = ("README.md", "Makefile", "pyproject.toml", "MANIFEST.in")
#: The sample authority with an approved SF2250 agreement (routing_tables/agreements.toml).
AUTHORITY = "29189846"


@dataclass(frozen=True)
class Distribution:
    checkout: Path
    sdist: Path
    wheel: Path


def _run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, **kwargs
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _clean_environment(venv: Path | None = None) -> dict[str, str]:
    """This process's environment without anything that could reach the source tree."""
    dev_bin = str(Path(sys.executable).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
        and not key.startswith("SP_")  # settings the installed platform must not see
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != dev_bin]
    if venv is not None:
        path.insert(0, str(venv / "bin"))
    env["PATH"] = os.pathsep.join(path)
    return env


def _copy_checkout(target: Path) -> None:
    listed = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=PROJECT
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = PROJECT / name
        if source.is_file():  # a tracked file deleted in the working tree is not shipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _files_below(root: Path, folder: str) -> set[str]:
    """Files below ``root/folder``, relative to ``root``, without Python caches."""
    return {
        path.relative_to(root).as_posix()
        for path in (root / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def _one(paths: list[Path]) -> Path:
    assert len(paths) == 1, paths
    return paths[0]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Distribution:
    checkout = tmp_path_factory.mktemp("checkout")
    _copy_checkout(checkout)
    out = tmp_path_factory.mktemp("dist")
    # Without --sdist/--wheel, build makes the sdist and then the wheel from the unpacked sdist.
    _run([sys.executable, "-m", "build", "--outdir", out, checkout], env=_clean_environment())
    return Distribution(
        checkout, _one(sorted(out.glob("*.tar.gz"))), _one(sorted(out.glob("*.whl")))
    )


@pytest.fixture(scope="module")
def venv(dist: Distribution, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", root], env=_clean_environment())
    python = root / "bin" / "python"
    _run([python, "-m", "pip", "install", "--quiet", dist.wheel], env=_clean_environment(root))
    return root


def test_the_sdist_carries_the_source_tree(dist: Distribution) -> None:
    with tarfile.open(dist.sdist) as sdist:
        # Names are "serviceplatform-<version>/<path>".
        names = {name.partition("/")[2] for name in sdist.getnames()}
    expected = set(SDIST_FILES)
    for folder in SDIST_FOLDERS:
        expected |= _files_below(dist.checkout, folder)
    assert expected - names == set()
    assert "wsdl/sf2250/oio/NemSMSRegister.xsd" in names
    assert "routing_tables/agreements.toml" in names


def test_the_wheel_carries_contracts_samples_migrations_and_the_admin_page(
    dist: Distribution,
) -> None:
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
    expected: set[str] = set()
    for folder, installed in DATA_FOLDERS.items():
        expected |= {
            installed + name.removeprefix(folder) for name in _files_below(dist.checkout, folder)
        }
    expected |= _files_below(dist.checkout, "serviceplatform/store/migrations")
    expected |= _files_below(dist.checkout, "serviceplatform/admin/static")
    assert expected - names == set()
    assert "serviceplatform/wsdl/oots/sp/ServiceplatformFault_1.xsd" in names
    assert "serviceplatform/admin/static/index.html" in names
    # Nothing lands at the top of site-packages but the two packages and the metadata.
    assert {name.split("/")[0] for name in names} == {
        "serviceplatform",
        "integrations",
        dist.wheel.name.split("-py3")[0] + ".dist-info",
    }


def test_an_installation_has_no_routing_directory_by_default(venv: Path, tmp_path: Path) -> None:
    # Sample tables where the old default pointed (beside the file) must not be picked up.
    shutil.copytree(PROJECT / "routing_tables", tmp_path / "routing_tables")
    config = tmp_path / "platform.toml"
    config.write_text('[database]\nurl = "sqlite:///platform.sqlite"\n', encoding="utf-8")
    result = subprocess.run(
        [str(venv / "bin" / "serviceplatform"), "routing", "check", "--config", str(config)],
        cwd=tmp_path,
        env=_clean_environment(venv),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no [routing] directory configured" in result.stderr


@dataclass
class InstalledSandbox:
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def installed_sandbox(venv: Path, tmp_path: Path) -> Iterator[InstalledSandbox]:
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    workdir = tmp_path / "sandbox"
    log = tmp_path / "sandbox.log"
    with log.open("wb") as sink:
        # A file, not a pipe: nobody reads the output while the sandbox runs.
        process = subprocess.Popen(
            [venv / "bin" / "serviceplatform", "sandbox", "--workdir", workdir, "--port", "0"],
            cwd=cwd,
            env=_clean_environment(venv),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield InstalledSandbox(process, workdir, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for_manifest(sandbox: InstalledSandbox) -> dict[str, Any]:
    manifest = sandbox.workdir / "sandbox.json"
    deadline = time.monotonic() + 120
    while not manifest.exists():
        code = sandbox.process.poll()
        assert code is None, f"sandbox exited with {code}:\n{sandbox.output()}"
        assert time.monotonic() < deadline, f"no sandbox.json:\n{sandbox.output()}"
        time.sleep(0.2)
    return load_manifest(sandbox.workdir)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def _canonical(document: bytes) -> bytes:
    return etree.tostring(etree.fromstring(document), method="c14n", with_comments=False)


def test_the_sandbox_from_the_installed_wheel_answers_sf2250(
    installed_sandbox: InstalledSandbox, venv: Path
) -> None:
    manifest = _wait_for_manifest(installed_sandbox)
    # The sandbox found its sample tables in the installed package, not in a source tree.
    config = tomllib.loads((installed_sandbox.workdir / "platform.toml").read_text())
    tables = Path(config["routing"]["directory"])
    assert tables.is_relative_to(venv) and (tables / "agreements.toml").is_file()

    service = manifest["services"]["sf2250"]
    http = _session()
    wsdl = http.get(service["url"] + "?wsdl", timeout=10)
    assert wsdl.status_code == 200, wsdl.text
    root = etree.fromstring(wsdl.content)
    assert root.tag == f"{{{WSDL_NS}}}definitions"
    # The hand-written contract (spyne's own WSDL has neither this text nor the includes),
    # with its references rewritten to the documents beside it, served from the wheel.
    assert "Hand-written contract of the service platform" in (
        root.findtext(f"{{{WSDL_NS}}}documentation") or ""
    )
    includes = root.iterfind(f".//{{{XSD_NS}}}include")
    assert service["url"] + "?xsd=VedligeholdTilmeldingMsg.xsd" in {
        include.get("schemaLocation") for include in includes
    }
    nested = http.get(service["url"] + "?xsd=oio/SlutbrugerStamdata.xsd", timeout=10)
    assert nested.status_code == 200, nested.text
    source = PROJECT / "wsdl" / "sf2250" / "oio" / "SlutbrugerStamdata.xsd"
    assert _canonical(nested.content) == _canonical(source.read_bytes())

    # A case system: zeep reads the served contract, the call is signed as KOMBIT clients do.
    control = manifest["peers"]["nemsms"]["control_url"]
    http.delete(control + "/requests", timeout=10)
    client = make_client(manifest, AUTHORITY)
    answer = client.service.OpdaterBorgerNemSMS(
        CPRCVR={"CPR-nr": "0202804321"}, SlutbrugerStamdata={"MobiltelefonNummer": "12345678"}
    )
    assert answer["StatusKode"] == 20
    seen = http.get(control + "/requests", timeout=10).json()
    assert [r["path"].rsplit("/", 1)[-1] for r in seen] == ["0202804321"]

    installed_sandbox.process.send_signal(signal.SIGTERM)
    assert installed_sandbox.process.wait(timeout=60) == 0, installed_sandbox.output()
    assert not (installed_sandbox.workdir / "sandbox.json").exists()
