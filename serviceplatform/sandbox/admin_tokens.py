"""The sandbox's admin credentials: one bearer token per sample principal, made once per workdir.

The tokens are random, kept in ``DIR/admin-tokens.json`` (mode 0600) so they survive a
restart, written to ``sandbox.json`` for scripts, and configured in ``platform.toml`` by their
SHA-256 only, as a production configuration would be.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from serviceplatform.admin.auth import AUTHORITY_ADMIN, OPERATOR, SUPPLIER, token_digest
from serviceplatform.private_file import write_private

#: The sample supplier of ``routing_tables/agreements.toml``.
SAMPLE_SUPPLIER = "Sandbox Supplier"
#: Its CVR number (the sample consumer system's ``supplier_cvr``).
SAMPLE_SUPPLIER_CVR = "12345674"
#: The sample authorities (``routing_tables/``) an authority administrator is made for.
SAMPLE_AUTHORITIES = ("29189846", "29189854", "29189862", "29189870")


def _principals() -> dict[str, dict[str, str]]:
    found = {
        "operator": {"role": OPERATOR},
        "supplier": {
            "role": SUPPLIER,
            "supplier": SAMPLE_SUPPLIER,
            "supplier_cvr": SAMPLE_SUPPLIER_CVR,
        },
    }
    for cvr in SAMPLE_AUTHORITIES:
        found[f"authority:{cvr}"] = {"role": AUTHORITY_ADMIN, "authority_cvr": cvr}
    return found


def ensure_tokens(path: Path) -> dict[str, str]:
    """Principal name -> token, created on first use and kept in ``path``."""
    tokens: dict[str, str] = {}
    if path.exists():
        tokens = json.loads(path.read_text(encoding="utf-8"))
    missing = [name for name in _principals() if name not in tokens]
    if missing:
        for name in missing:
            tokens[name] = secrets.token_urlsafe(24)
        write_private(path, json.dumps(tokens, indent=2))
    return tokens


def admin_settings(tokens: dict[str, str]) -> dict[str, Any]:
    """The ``[admin]`` table of ``platform.toml``: principals by token digest."""
    principals = {}
    for name, fields in _principals().items():
        # TOML keys may not contain ':' unquoted; tomli-w quotes them.
        principals[name] = {**fields, "token_sha256": token_digest(tokens[name])}
    return {"principals": principals}
