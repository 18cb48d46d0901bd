"""The three PostgreSQL roles of docs/deployment.md, for tests: the schema's owner (the tests'
own login, ``sp_test``, which owns each test's schema), the serving role that may only change
rows and the read-only role of reports.

``sp_test`` may not create roles, so ``tests/servers.sh`` creates the two login roles once per
server (password = name) with nothing granted; each test grants them rights on its own schema
with the document's own ``GRANT`` block (:func:`grant_documented_roles`), so the document and
the tests cannot drift apart. The grants go with the schema when it is dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

#: The serving role: SELECT, INSERT, UPDATE, DELETE and sequences; no CREATE.
APP_ROLE = "sp_test_app"
#: The read-only role of reports and monitoring: SELECT.
REPORT_ROLE = "sp_test_report"

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
#: The document's names and what a test schema calls them.
_DOC_APP, _DOC_REPORT, _DOC_OWNER = (
    "serviceplatform_app",
    "serviceplatform_report",
    "serviceplatform",
)


def schema_of(url: str) -> str:
    """The schema of a URL of ``tests.conftest.postgres_schema`` (its ``search_path``)."""
    options = make_url(url).query.get("options", "")
    found = re.search(r"-csearch_path=(\w+)", str(options))
    assert found is not None, f"not a test schema's URL: {options!r}"
    return found.group(1)


def role_url(url: str, role: str, *, settings: str = "") -> str:
    """``url`` logged in as ``role`` (password = name), with more ``-c`` settings."""
    options = f"-csearch_path={schema_of(url)}" + (f" {settings}" if settings else "")
    return (
        make_url(url)
        .set(username=role, password=role)
        .update_query_dict({"options": options})
        .render_as_string(hide_password=False)
    )


def require_roles(url: str) -> None:
    """Fail (never skip) when the server lacks the login roles ``tests/servers.sh`` creates."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = set(
                connection.execute(
                    text("SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname IN (:a, :r)"),
                    {"a": APP_ROLE, "r": REPORT_ROLE},
                ).scalars()
            )
    finally:
        engine.dispose()
    missing = sorted({APP_ROLE, REPORT_ROLE} - found)
    if missing:
        pytest.fail(
            f"the database-role tests need the login roles {', '.join(missing)} "
            "(password = name) on the test server: as root, bash tests/servers.sh",
            pytrace=False,
        )


def documented_grants(schema: str, database: str, owner: str) -> list[str]:
    """The statements of docs/deployment.md's tested ``sql`` block, for a test schema."""
    blocks = re.findall(r"^```sql\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.M | re.S)
    assert len(blocks) == 1, "docs/deployment.md: the roles' sql block went missing"
    sql = blocks[0]
    for old, new in [
        (_DOC_APP, APP_ROLE),
        (_DOC_REPORT, REPORT_ROLE),
        (f"DATABASE {_DOC_OWNER}", f'DATABASE "{database}"'),
        (f"ROLE {_DOC_OWNER}", f'ROLE "{owner}"'),
        ("SCHEMA public", f'SCHEMA "{schema}"'),
    ]:
        sql = sql.replace(old, new)
    # Every name of the document was replaced: none acts on the real public schema.
    assert _DOC_OWNER not in sql and "public" not in sql.replace("PUBLIC", ""), sql
    return [" ".join(s.split()) for s in sql.split(";") if s.strip()]


def grant_documented_roles(owner_url: str) -> None:
    """Run the document's grants as the schema's owner, on the schema of ``owner_url``."""
    parsed = make_url(owner_url)
    assert parsed.database and parsed.username
    statements = documented_grants(schema_of(owner_url), parsed.database, parsed.username)
    engine = create_engine(owner_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
