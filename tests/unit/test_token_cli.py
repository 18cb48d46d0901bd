"""``serviceplatform token``: the audience of --config, values it refuses, one error line.

A sandbox PKI made in a temporary directory (no sandbox runs) and click's test runner.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from serviceplatform.cli import cli
from serviceplatform.sandbox.pki import ensure_pki

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
CVR = "29189846"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    directory = tmp_path / "sb"
    ensure_pki(directory / "pki")
    (directory / "platform.toml").write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/sb.sqlite"\n'
        '[services.sf2250]\nentity_id = "urn:sandbox:sf2250"\n',
        encoding="utf-8",
    )
    return directory


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output
    return result


def audience(result: Result) -> str:
    assert result.exit_code == 0, result.output
    found = etree.fromstring(result.stdout.encode()).findtext(f".//{{{SAML}}}Audience")
    assert found is not None
    return found


def test_the_audience_is_the_entity_id_of_the_settings_named(workdir: Path, tmp_path: Path) -> None:
    assert audience(run("token", "--workdir", str(workdir), "--cvr", CVR)) == "urn:sandbox:sf2250"
    # --config was ignored: the token carried the sandbox's audience, which the platform
    # served with that file refuses (SP-210).
    config = tmp_path / "platform.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/p.sqlite"\n'
        '[services.sf2250]\nentity_id = "urn:deployed:sf2250"\n',
        encoding="utf-8",
    )
    given = run("token", "--workdir", str(workdir), "--config", str(config), "--cvr", CVR)
    assert audience(given) == "urn:deployed:sf2250"
    named = run("token", "--workdir", str(workdir), "--cvr", CVR, "--audience", "urn:x")
    assert audience(named) == "urn:x"


@pytest.mark.parametrize("value", ["", " ", " urn:x"])
def test_an_empty_or_padded_audience_is_a_usage_error(workdir: Path, value: str) -> None:
    result = run("token", "--workdir", str(workdir), "--cvr", CVR, "--audience", value)
    assert result.exit_code == 2
    assert "Invalid value for --audience: must be the entity id of a service" in result.stderr


def test_a_damaged_pki_is_one_error_line(workdir: Path) -> None:
    (workdir / "pki" / "sts.key").write_text("garbage", encoding="utf-8")
    result = run("token", "--workdir", str(workdir), "--cvr", CVR)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {workdir / 'pki'} holds a sandbox PKI that cannot be read (ValueError): "
        "remove it and run `serviceplatform sandbox` once\n"
    )


def test_a_missing_settings_file_given_with_config_is_one_error_line(
    workdir: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "none.toml"
    result = run("token", "--workdir", str(workdir), "--config", str(missing), "--cvr", CVR)
    assert result.exit_code == 5
    assert result.stderr.startswith("error: invalid settings: ") and str(missing) in result.stderr
    assert result.stderr.count("\n") == 1
