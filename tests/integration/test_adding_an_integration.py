"""Adding an integration touches no core file: a tiny one, defined by the tests, works end to end.

``tests/fixtures/echo_integration`` declares an error class with its own SP-code, a settings
section ``[echo]``, a table made by its own migration branch, a gauge and a WSGI
application. Registering it is what a real integration's one registry line does (here: a
patched ``registry.INTEGRATIONS``); then the core loads its settings, finds its error,
migrates its table (SQLite and PostgreSQL), serves it over a real socket and scrapes its
gauge, and no core file mentions it.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from serviceplatform import registry
from serviceplatform.app import PlatformApp
from serviceplatform.config import load_settings, read_settings
from serviceplatform.config_view import masked_settings
from serviceplatform.errors import all_error_classes, check_codes, rebuild_error
from serviceplatform.store.db import Database, alembic_config, migration_head
from serviceplatform.store.models import Base
from tests.wsgi_serving import LocalWsgiServer

ROOT = Path(__file__).resolve().parents[2]
ECHO = "tests.fixtures.echo_integration"


@pytest.fixture
def echo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The echo integration registered for one test, and forgotten after it."""
    monkeypatch.setitem(registry.INTEGRATIONS, "echo", f"{ECHO}:INTEGRATION")
    registry.integrations.cache_clear()
    try:
        yield
    finally:
        monkeypatch.undo()
        registry.integrations.cache_clear()
        # Its table leaves the core's MetaData, so later schema comparisons do not expect it.
        table = Base.metadata.tables.get("echo_shouts")
        if table is not None:
            Base.metadata.remove(table)
        for name in [m for m in sys.modules if m == ECHO or m.startswith(ECHO + ".")]:
            del sys.modules[name]
        # Its error class leaves ServicePlatformError.__subclasses__() (a weak list) now,
        # not at some later collection, so a re-import never meets the old class.
        gc.collect()


def test_no_core_file_names_the_echo_integration() -> None:
    core = [
        *ROOT.glob("serviceplatform/**/*.py"),
        *ROOT.glob("integrations/**/*.py"),
        ROOT / "pyproject.toml",
    ]
    naming = [str(p) for p in core if "echo_integration" in p.read_text(encoding="utf-8")]
    assert naming == []
    assert "echo" not in registry.INTEGRATIONS


def test_its_error_joins_the_tree_through_the_registry(echo: None) -> None:
    by_code = {cls.code: cls for cls in all_error_classes()}
    assert by_code["SP-800"].__module__ == f"{ECHO}.errors"
    assert check_codes() == []
    rebuilt = rebuild_error("SP-800", "The echo integration has nothing to echo: empty")
    assert (type(rebuilt).__name__, rebuilt.detail) == ("NothingToEcho", "empty")


def test_a_code_outside_its_range_is_a_breach(echo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fixtures.echo_integration import errors

    monkeypatch.setattr(errors.NothingToEcho, "code", "SP-811")
    assert check_codes() == [
        f"{ECHO}.errors.NothingToEcho: SP-811 is outside integration 'echo''s range"
    ]
    monkeypatch.setattr(errors.NothingToEcho, "code", "SP-501")
    assert f"{ECHO}.errors.NothingToEcho: SP-501 is in integration 'sf2250''s range" in (
        check_codes()
    )


def test_its_settings_section_is_loaded_and_checked(echo: None, tmp_path: Path) -> None:
    from tests.fixtures.echo_integration.settings import ECHO_SETTINGS, EchoSettings

    path = tmp_path / "platform.toml"
    path.write_text("[echo]\ngreeting = 'hej'\necho_password = 's3cret'\n", encoding="utf-8")
    settings = load_settings(path, {"SP_ECHO__PATH": "/shout"})
    section = settings.section(ECHO_SETTINGS)
    assert isinstance(section, EchoSettings)
    assert (section.greeting, section.path) == ("hej", "/shout")
    assert masked_settings(settings)["echo"] == {
        "path": "/shout",
        "greeting": "hej",
        "echo_password": "***",
    }
    path.write_text("[echo]\ngretting = 'hej'\n", encoding="utf-8")
    assert read_settings(path, {}).problems == [f"unknown setting echo.gretting in {path}"]


#: The head of the core's chain (its newest migration), the integrations' scripts in it included.
CORE_HEAD = "0015"


def test_without_it_the_chain_has_one_head() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [CORE_HEAD]
    assert migration_head() == CORE_HEAD


def test_its_migration_branch_creates_its_table(echo: None, database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert sorted(script.get_heads()) == [CORE_HEAD, "echo_0001"]
    assert script.get_revision("echo").revision == "echo_0001"  # its branch label
    assert migration_head() == f"{CORE_HEAD}, echo_0001"
    db = Database(database_url)
    try:
        migration = db.upgrade()
        assert (migration.before, migration.after) == (None, f"{CORE_HEAD}, echo_0001")
        assert db.current_revision() == migration_head()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert "echo_shouts" in Base.metadata.tables
            assert list(compare_metadata(context, Base.metadata)) == []
    finally:
        db.dispose()


def test_a_database_of_the_core_chain_gains_the_branch(echo: None, database_url: str) -> None:
    # A database made before the integration was added (at 0008, an earlier core head) gets
    # the rest of the core's chain and the integration's branch.
    db = Database(database_url)
    try:
        db.upgrade("0008")
        assert db.current_revision() == "0008"
        migration = db.upgrade()
        assert (migration.before, migration.after) == ("0008", f"{CORE_HEAD}, echo_0001")
    finally:
        db.dispose()


def test_the_platform_serves_it_and_scrapes_its_gauge(
    echo: None, database_url: str, tmp_path: Path
) -> None:
    from tests.fixtures.echo_integration.tables import echo_shouts

    path = tmp_path / "platform.toml"
    path.write_text(
        f"[database]\nurl = '{database_url}'\n[echo]\ngreeting = 'hej'\n", encoding="utf-8"
    )
    settings = load_settings(path, {})
    Database.from_settings(settings).upgrade()
    app = PlatformApp(settings)
    server = LocalWsgiServer(app)
    http = requests.Session()
    http.trust_env = False
    try:
        answer = http.post(server.base_url + "/echo", data=b"hello", timeout=10)
        assert (answer.status_code, answer.text) == (200, "hej: hello")
        refused = http.post(server.base_url + "/echo", data=b"", timeout=10)
        assert refused.status_code == 400
        assert refused.text == "SP-800 The echo integration has nothing to echo: the body is empty"
        with app.platform.db.transaction() as connection:
            assert list(connection.execute(select(echo_shouts.c.text)).scalars()) == ["hello"]
        metrics = http.get(server.base_url + "/metrics", timeout=10).text
        assert "echo_shouts 1.0" in metrics
        ready = http.get(server.base_url + "/readyz", timeout=10).json()
        assert ready["checks"]["database"]["ok"] is True
    finally:
        server.close()
        app.close()
        http.close()
