"""``serviceplatform.app:create_app()`` under another WSGI server refuses what ``serve`` does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serviceplatform.app import PlatformApp, create_app
from serviceplatform.errors import ConfigurationError
from serviceplatform.sandbox.pki import Pki, ensure_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return ensure_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SP_") and not n.startswith("SP_TEST_")]:
        monkeypatch.delenv(name)


def config(tmp_path: Path, pki: Pki, public_base_url: str) -> Path:
    path = tmp_path / "platform.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "sp.sqlite"}"\n'
        f'[security]\ntrusted_sts_certs = ["{pki.sts_cert}"]\ntrusted_issuers = ["https://sts"]\n'
        f'[soap]\npublic_base_url = "{public_base_url}"\n',
        encoding="utf-8",
    )
    return path


def test_without_sp_config_it_refuses() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_app()
    assert caught.value.detail == "SP_CONFIG names no configuration file"


def test_unfit_settings_are_refused(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, pki, public_base_url="")
    monkeypatch.setenv("SP_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        create_app()
    assert (caught.value.detail or "").startswith(
        f"cannot serve with {path}: soap.public_base_url is empty"
    )


def test_fit_settings_make_the_application(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SP_CONFIG", str(config(tmp_path, pki, "https://sp.example.dk")))
    monkeypatch.setenv("SP_LOGGING__LEVEL", "DEBUG")
    app = create_app()
    assert isinstance(app, PlatformApp)
    assert app.settings.soap.public_base_url == "https://sp.example.dk"
    assert app.settings.logging.level == "DEBUG"


def test_a_settings_file_with_a_password_open_to_others_is_refused(
    tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, pki, "https://sp.example.dk")
    path.write_text(
        path.read_text(encoding="utf-8") + '[oots]\npush_password = "hunter2"\n', encoding="utf-8"
    )
    path.chmod(0o604)
    monkeypatch.setenv("SP_CONFIG", str(path))
    with pytest.raises(ConfigurationError) as caught:
        create_app()
    assert caught.value.detail == (
        f"cannot serve with {path}: oots.push_password: {path} holds a password and is "
        f"readable by group or others (mode 0604): chmod 600 {path}"
    )
