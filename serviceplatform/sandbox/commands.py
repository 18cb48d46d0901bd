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

from serviceplatform.commands.context import CommandFailed
from serviceplatform.commands.settings_source import load_cli_settings
from serviceplatform.registry import soap_services
from serviceplatform.routing.identifiers import is_valid_cvr

DEFAULT_SANDBOX_DIR = Path(".sandbox")
#: The service whose audience ``token`` uses by default (SANDBOX.md: the SF2250 entity id).
DEFAULT_TOKEN_SERVICE = "sf2250"
#: The longest ``token --ttl``: a year, in seconds.
MAX_TOKEN_TTL = 366 * 24 * 3600


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="0 picks a free port.",
)
# serve's bounds (serviceplatform.cli.MAX_WORKERS, MAX_THREADS; the CLI imports this module).
@click.option("--workers", type=click.IntRange(1, 256), default=2, show_default=True)
@click.option("--threads", type=click.IntRange(1, 1024), default=4, show_default=True)
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
@click.option(
    "--audience",
    help="Entity id of the service (default: the SF2250 entity id of --config FILE, else of "
    "the sandbox's settings).",
)
@click.option("--ttl", type=int, default=8 * 3600, show_default=True, help="Validity in seconds.")
@click.pass_context
def token(ctx: click.Context, cvr: str, audience: str | None, ttl: int) -> None:
    """Print a SAML 2.0 assertion signed with the sandbox STS key (holder-of-key: the client).

    The key and the holder's certificate are the sandbox's in --workdir DIR (default
    .sandbox/). --config FILE names the platform the token is for: its SF2250 entity id is
    the default audience (a platform served with its own settings that trusts the sandbox
    STS, docs/deployment.md).

    The platform requires the request's signature to cover this assertion (an STR-Transform
    reference to the SecurityTokenReference naming it, or a reference to its ID), as
    serviceplatform.client.request_signer does: docs/security.md.
    """
    if not is_valid_cvr(cvr):
        raise click.BadParameter(
            f"{cvr!r} is not an 8-digit CVR number with a valid check digit", param_hint="--cvr"
        )
    if audience is not None and (not audience.strip() or audience != audience.strip()):
        # An empty audience made a token that every service refuses (SP-210).
        raise click.BadParameter(
            "must be the entity id of a service, not empty or padded", param_hint="--audience"
        )
    if ttl <= 0:
        raise click.BadParameter("must be positive", param_hint="--ttl")
    if ttl > MAX_TOKEN_TTL:
        # Beyond timedelta's range a huge number would end in a traceback.
        raise click.BadParameter(
            f"must be at most {MAX_TOKEN_TTL} seconds (a year)", param_hint="--ttl"
        )
    meta = ctx.find_root().meta
    config: Path | None = meta.get("config")
    workdir: Path = meta.get("workdir") or DEFAULT_SANDBOX_DIR
    pki_dir = workdir / "pki"
    if not (pki_dir / "sts.key").exists():
        raise CommandFailed(f"{workdir} holds no sandbox PKI: run `serviceplatform sandbox` once")
    if audience is None:
        # --config is the platform's settings; the work dir then only lends its PKI.
        settings = load_cli_settings(config, None if config is not None else workdir)
        audience = settings.service(DEFAULT_TOKEN_SERVICE).entity_id or _default_audience()
    click.echo(_mint(pki_dir, cvr, audience, ttl))


def _mint(pki_dir: Path, cvr: str, audience: str, ttl: int) -> str:
    from serviceplatform.client.request_signer import mint_assertion
    from serviceplatform.errors import ServicePlatformError
    from serviceplatform.sandbox.pki import STS_ISSUER, ensure_pki

    try:
        pki = ensure_pki(pki_dir)
        key = load_pem_private_key(pki.sts_key.read_bytes(), password=None)
        sts_cert = x509.load_pem_x509_certificate(pki.sts_cert.read_bytes())
        holder_cert = x509.load_pem_x509_certificate(pki.client_cert.read_bytes())
    except (OSError, ValueError, TypeError, ServicePlatformError) as exc:
        # A damaged PKI (a file emptied or overwritten) was a traceback.
        raise CommandFailed(
            f"{pki_dir} holds a sandbox PKI that cannot be read ({type(exc).__name__}): "
            "remove it and run `serviceplatform sandbox` once"
        ) from None
    assertion = mint_assertion(
        sts_key=key,  # type: ignore[arg-type]
        sts_cert=sts_cert,
        issuer=STS_ISSUER,
        audience=audience,
        authority_cvr=cvr,
        holder_cert=holder_cert,
        ttl=timedelta(seconds=ttl),
    )
    return etree.tostring(assertion, encoding="unicode")


def _default_audience() -> str:

    return next(s.default_entity_id for s in soap_services() if s.key == DEFAULT_TOKEN_SERVICE)
