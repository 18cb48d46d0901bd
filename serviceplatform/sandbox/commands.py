"""The sandbox's own commands: ``serviceplatform sandbox`` and ``serviceplatform token``.

They live with the sandbox, not in the core CLI, so that product code never imports the
sandbox: ``serviceplatform/registry.py`` names them in its table of commands, and the CLI
loads them by name like the integrations' commands. Their options and behaviour are the
sandbox contract (``../shared/docs/SANDBOX.md``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from serviceplatform.commands.settings_source import load_cli_settings
from serviceplatform.registry import soap_services
from serviceplatform.routing.identifiers import is_valid_cvr

DEFAULT_SANDBOX_DIR = Path(".sandbox")
#: The service whose audience ``token`` uses by default (SANDBOX.md: the SF2250 entity id).
DEFAULT_TOKEN_SERVICE = "sf2250"


@click.command()
@click.option("--port", type=int, default=8080, show_default=True, help="0 picks a free port.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=4, show_default=True)
@click.pass_context
def sandbox(ctx: click.Context, port: int, workers: int, threads: int) -> None:
    """Run the platform with simulated peers in DIR (default .sandbox/), until Ctrl-C.

    --config FILE is laid over the sandbox's own settings.
    """
    # Imported when run: every command line loads this module, and the runner brings the
    # simulated peers with it.
    from serviceplatform.sandbox.runner import run_sandbox

    meta = ctx.find_root().meta
    workdir = meta.get("workdir") or DEFAULT_SANDBOX_DIR
    ctx.exit(run_sandbox(workdir, port, meta.get("config"), workers=workers, threads=threads))


@click.command()
@click.option("--cvr", required=True, help="The authority's CVR number (the routing key).")
@click.option("--audience", help="Entity id of the service (default: the SF2250 service).")
@click.option("--ttl", type=int, default=8 * 3600, show_default=True, help="Validity in seconds.")
@click.pass_context
def token(ctx: click.Context, cvr: str, audience: str | None, ttl: int) -> None:
    """Print a SAML 2.0 assertion signed with the sandbox STS key (holder-of-key: the client).

    The platform requires the request's signature to cover this assertion (an STR-Transform
    reference to the SecurityTokenReference naming it, or a reference to its ID), as
    serviceplatform.client.request_signer does: docs/security.md.
    """
    from serviceplatform.client.request_signer import mint_assertion
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki

    if not is_valid_cvr(cvr):
        raise click.BadParameter(f"{cvr} is not an 8-digit CVR number with a valid check digit")
    if ttl <= 0:
        raise click.BadParameter("--ttl must be positive")
    workdir = ctx.find_root().meta.get("workdir") or DEFAULT_SANDBOX_DIR
    pki_dir = workdir / "pki"
    if not (pki_dir / "sts.key").exists():
        raise click.ClickException(
            f"{workdir} holds no sandbox PKI: run `serviceplatform sandbox` once"
        )
    pki = ensure_pki(pki_dir)
    if audience is None:
        configured = load_cli_settings(None, workdir).service(DEFAULT_TOKEN_SERVICE).entity_id
        audience = configured or _default_audience()
    key = load_pem_private_key(pki.sts_key.read_bytes(), password=None)
    assertion = mint_assertion(
        sts_key=key,  # type: ignore[arg-type]
        sts_cert=x509.load_pem_x509_certificate(pki.sts_cert.read_bytes()),
        issuer=STS_ISSUER,
        audience=audience,
        authority_cvr=cvr,
        holder_cert=x509.load_pem_x509_certificate(pki.client_cert.read_bytes()),
        ttl=timedelta(seconds=ttl),
    )
    click.echo(etree.tostring(assertion, encoding="unicode"))


def _default_audience() -> str:

    return next(s.default_entity_id for s in soap_services() if s.key == DEFAULT_TOKEN_SERVICE)
