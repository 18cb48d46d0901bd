"""The layering rules of the code base, checked on every module's imports and calls.

- The core (``serviceplatform``) never imports an integration, except in the registry.
- An integration never imports another integration.
- Product code (the core outside ``serviceplatform.sandbox``, and the integrations) never
  imports the sandbox, nor the client package ``serviceplatform.client`` (the request signer
  and token minter a case system, the sandbox, the examples and the tests use).
- ``serviceplatform.routing`` and ``serviceplatform.security`` do no I/O: no network,
  database, subprocess or HTTP module, and no file reads or writes.

Imports inside functions count as much as those at the top. ``KNOWN`` lists the breaches
that stand today, each to be removed by the architecture issue; the test fails on a breach
not listed and on a listed one that is gone, so the list can only shrink.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Modules that do I/O; ``routing`` and ``security`` may import none of them.
IO_MODULES = (
    "socket",
    "ssl",
    "http",
    "urllib.request",
    "subprocess",
    "requests",
    "urllib3",
    "zeep",
    "pika",
    "sqlalchemy",
    "alembic",
    "serviceplatform.store",
    "serviceplatform.outbound",
    "serviceplatform.distribution",
    "serviceplatform.routing_files",
)
#: Calls that read or write files (``open`` and the ``Path`` methods).
IO_CALLS = frozenset(
    {
        "open",
        "read_text",
        "read_bytes",
        "write_text",
        "write_bytes",
        "glob",
        "iterdir",
        "exists",
        "is_file",
        "is_dir",
        "stat",
        "mkdir",
        "unlink",
        "resolve",
    }
)
PURE_PACKAGES = ("serviceplatform.routing", "serviceplatform.security")
#: Breaches that stand today (none: keep it so, or list one here with the reason).
KNOWN: set[tuple[str, str, str]] = set()


@dataclass(frozen=True)
class Breach:
    rule: str
    module: str
    target: str
    line: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.module, self.target)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int, bool]]:
    """Every module ``tree`` imports (relative imports made absolute), with its line.

    ``from x import y`` yields ``x`` and, marked as a name, ``x.y`` (``y`` may be a module).
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            yield name, node.lineno, False
            for alias in node.names:
                # ``from serviceplatform import sandbox`` imports the module sandbox.
                yield f"{name}.{alias.name}", node.lineno, True


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def breaches(root: Path) -> list[Breach]:
    found: list[Breach] = []
    files = sorted([*root.glob("serviceplatform/**/*.py"), *root.glob("integrations/**/*.py")])
    for path in files:
        module = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        core = _within(module, "serviceplatform")
        sandbox = _within(module, "serviceplatform.sandbox")
        client = _within(module, "serviceplatform.client")
        pure = any(_within(module, p) for p in PURE_PACKAGES)
        for target, line, is_name in imported(tree, module, path.name == "__init__.py"):
            if not target:
                continue
            if (
                core
                and not sandbox
                and module != "serviceplatform.registry"
                and _within(target, "integrations")
            ):
                found.append(Breach("integration", module, _top(target, 2), line))
            if _within(module, "integrations") and _within(target, "integrations"):
                own, other = module.split(".")[:2], target.split(".")[:2]
                if len(other) == 2 and own != other:
                    found.append(Breach("integration", module, ".".join(other), line))
            if not sandbox and _within(target, "serviceplatform.sandbox"):
                found.append(Breach("sandbox", module, _top(target, 3), line))
            if not (sandbox or client) and _within(target, "serviceplatform.client"):
                found.append(Breach("client", module, _top(target, 2), line))
            if pure and not is_name and any(_within(target, io) for io in IO_MODULES):
                found.append(Breach("io", module, target, line))
        if pure:
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    called = _called(node.func)
                    if called in IO_CALLS:
                        found.append(Breach("io", module, f"{called}()", node.lineno))
    # One breach per (rule, module, target): the first line that makes it.
    unique: dict[tuple[str, str, str], Breach] = {}
    for breach in found:
        unique.setdefault(breach.key, breach)
    return list(unique.values())


def _top(name: str, parts: int) -> str:
    return ".".join(name.split(".")[:parts])


def _called(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def test_the_code_base_keeps_its_layers() -> None:
    found = {b.key: b for b in breaches(ROOT)}
    new = [f"{b.module}:{b.line} breaks the {b.rule} rule: {b.target}" for k, b in found.items()
           if k not in KNOWN]  # fmt: skip
    assert new == [], "\n".join(new)
    gone = KNOWN - found.keys()
    assert gone == set(), f"fixed, so take them out of KNOWN: {sorted(gone)}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in {
        "serviceplatform/__init__.py": "",
        "serviceplatform/routing/__init__.py": "",
        "integrations/__init__.py": "",
        "integrations/a/__init__.py": "",
        "integrations/b/__init__.py": "",
        **files,
    }.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"serviceplatform/platform.py": "from integrations.a import x\n"},
            ("integration", "serviceplatform.platform", "integrations.a"),
        ),
        (
            {"serviceplatform/platform.py": "def f():\n    import integrations.b.thing\n"},
            ("integration", "serviceplatform.platform", "integrations.b"),
        ),
        (
            {"integrations/a/handler.py": "from integrations.b.model import M\n"},
            ("integration", "integrations.a.handler", "integrations.b"),
        ),
        (
            {"integrations/a/handler.py": "from serviceplatform.sandbox.pki import ensure_pki\n"},
            ("sandbox", "integrations.a.handler", "serviceplatform.sandbox.pki"),
        ),
        (
            {"serviceplatform/app.py": "from serviceplatform import sandbox\n"},
            ("sandbox", "serviceplatform.app", "serviceplatform.sandbox"),
        ),
        (
            {"integrations/a/service.py": "from serviceplatform.client import token_minter\n"},
            ("client", "integrations.a.service", "serviceplatform.client"),
        ),
        (
            {"serviceplatform/distribution/amqp.py": "import serviceplatform.client.x\n"},
            ("client", "serviceplatform.distribution.amqp", "serviceplatform.client"),
        ),
        (
            {"serviceplatform/routing/resolve.py": "import requests\n"},
            ("io", "serviceplatform.routing.resolve", "requests"),
        ),
        (
            {"serviceplatform/routing/resolve.py": "from ..store.db import Database\n"},
            ("io", "serviceplatform.routing.resolve", "serviceplatform.store.db"),
        ),
        (
            {"serviceplatform/routing/resolve.py": "def f(p):\n    return p.read_text()\n"},
            ("io", "serviceplatform.routing.resolve", "read_text()"),
        ),
    ],
)
def test_a_forbidden_import_or_call_is_found(
    tmp_path: Path, files: dict[str, str], expected: tuple[str, str, str]
) -> None:
    assert [b.key for b in breaches(_tree(tmp_path, files))] == [expected]


def test_allowed_imports_are_not_breaches(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "serviceplatform/registry.py": "from integrations.a import x\n",
            "serviceplatform/sandbox/__init__.py": "",
            "serviceplatform/sandbox/runner.py": "import integrations.a\nimport socket\n"
            "from serviceplatform.client.request_signer import KombitWsse\n",
            "serviceplatform/client/request_signer.py": "from serviceplatform.client import m\n",
            "integrations/a/handler.py": "from integrations.a.model import M\nimport requests\n",
            "serviceplatform/routing/resolve.py": "from serviceplatform.errors import E\n",
        },
    )
    assert breaches(root) == []


# --- the core defines and uses no integration's own parts ------------------------------------

#: Core modules that once held integrations' errors, settings, tables or their use. The
#: historic migrations (``store/migrations/versions``) are not checked: a revision is never
#: rewritten, and 0003 made the subscription tables beside the outbox.
OWNERLESS = (
    "serviceplatform/errors.py",
    "serviceplatform/config.py",
    "serviceplatform/config_check.py",
    "serviceplatform/config_view.py",
    "serviceplatform/scheduling.py",
    "serviceplatform/observability/metrics.py",
    "serviceplatform/store/*.py",
)


def integration_names() -> dict[str, str]:
    """Name -> the integration that owns it: its error classes, sections, tables, records."""
    import dataclasses

    from serviceplatform import registry
    from serviceplatform.errors import ServicePlatformError
    from serviceplatform.store.models import Base

    owned: dict[str, str] = {}
    for integration in registry.integrations():
        modules = []
        if integration.errors is not None:
            modules.append(integration.errors.module)
        if integration.tables:
            modules.append(integration.tables)
            before = set(Base.metadata.tables)
            registry.import_tables()
            owned.update({t: integration.name for t in set(Base.metadata.tables) - before})
        if integration.settings is not None:
            owned[integration.settings.name] = integration.name
            modules.append(integration.settings.type.__module__)
        for module_name in modules:
            module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
            for name, value in vars(module).items():
                own = getattr(value, "__module__", None) == module_name
                if own and isinstance(value, type):
                    is_part = (
                        issubclass(value, ServicePlatformError)
                        or dataclasses.is_dataclass(value)
                        or issubclass(value, Base)
                    )
                    if is_part:
                        owned[name] = integration.name
            for table in getattr(module, "__dict__", {}).values():
                table_name = getattr(table, "name", None)
                if isinstance(table_name, str) and table_name in Base.metadata.tables:
                    owned[table_name] = integration.name
    return owned


def used_names(source: str) -> set[str]:
    """Identifiers and whole string constants of ``source``, docstrings and comments aside."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias):
            found.update(node.name.split("."))
        elif isinstance(node, ast.ClassDef | ast.FunctionDef):
            found.add(node.name)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            found.add(node.value)
    return found


def test_the_core_names_no_part_an_integration_owns() -> None:
    owned = integration_names()
    # The check sees what it must: a few of each kind.
    for name in ("SmsTooLong", "OotsError", "subscriptions", "oots", "OotsSettings"):
        assert name in owned
    for name in ("sendings", "subscription_snapshots", "oots_requests", "SendingRecord"):
        assert name in owned
    files = sorted({p for pattern in OWNERLESS for p in ROOT.glob(pattern)})
    assert len(files) > 15
    named = {
        f"{path.relative_to(ROOT)} names {name} ({owned[name]}'s)"
        for path in files
        for name in used_names(path.read_text(encoding="utf-8")) & owned.keys()
    }
    assert sorted(named) == []


def test_a_use_of_an_integrations_part_is_seen() -> None:
    owned = integration_names()
    for source in (
        "from x import SmsTooLong\n",
        "def f(settings):\n    return settings.oots.push_path\n",
        "TABLES = ('subscription_snapshots',)\n",
    ):
        assert used_names(source) & owned.keys(), source
    assert not used_names('"""About ``[oots]`` and SmsTooLong."""\n') & owned.keys()
