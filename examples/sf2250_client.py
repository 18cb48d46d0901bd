"""A case system calling SF2250 VedligeholdTilmelding on the sandbox, the way KOMBIT clients do.

Run ``make sandbox`` in one terminal, then in another::

    .venv/bin/python -m examples.sf2250_client [--workdir .sandbox] [--cpr 0101901234]

It reads ``sandbox.json``, mints a token with the sandbox STS (as a real STS would issue it),
builds a zeep client from the service's ``?wsdl``, signs each request with WS-Security as the
token's holder of key, and calls ``OpdaterBorgerNemSMS`` then ``TilmeldNemSMS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from zeep import Client
from zeep.exceptions import Fault
from zeep.transports import Transport

from serviceplatform.client.request_signer import KombitWsse, mint_assertion


def load_manifest(workdir: Path) -> dict[str, Any]:
    path = workdir / "sandbox.json"
    if not path.exists():
        sys.exit(f"{path} not found: is `make sandbox` running?")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def make_client(manifest: dict[str, Any], cvr: str, service_key: str = "sf2250") -> Client:
    """A zeep client of the service ``service_key`` of ``sandbox.json``, signing as ``cvr``."""
    pki = manifest["pki"]
    service = manifest["services"][service_key]
    holder_key = load_pem_private_key(Path(pki["client_key"]).read_bytes(), password=None)
    sts_key = load_pem_private_key(Path(pki["sts_key"]).read_bytes(), password=None)
    assert isinstance(holder_key, RSAPrivateKey) and isinstance(sts_key, RSAPrivateKey)
    assertion = mint_assertion(
        sts_key=sts_key,
        sts_cert=x509.load_pem_x509_certificate(Path(pki["sts_cert"]).read_bytes()),
        issuer=pki["sts_issuer"],
        audience=service["entity_id"],
        authority_cvr=cvr,
        holder_cert=x509.load_pem_x509_certificate(Path(pki["client_cert"]).read_bytes()),
    )
    session = requests.Session()
    session.trust_env = False  # the machine's CA bundle and proxies are not ours to use
    return Client(  # type: ignore[no-untyped-call]
        service["url"] + "?wsdl",
        transport=Transport(session=session, timeout=10),  # type: ignore[no-untyped-call]
        wsse=KombitWsse(assertion=assertion, holder_key=holder_key, to=service["url"]),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".sandbox"))
    parser.add_argument("--cvr", help="authority CVR (default: the sandbox's first authority)")
    parser.add_argument("--cpr", default="0101901234", help="the citizen to subscribe")
    parser.add_argument("--mobile", default="12345678")
    args = parser.parse_args(argv)

    manifest = load_manifest(args.workdir)
    cvr = args.cvr or manifest["authorities"][0]["cvr"]
    client = make_client(manifest, cvr)
    try:
        answer = client.service.OpdaterBorgerNemSMS(
            CPRCVR={"CPR-nr": args.cpr},
            SlutbrugerStamdata={"MobiltelefonNummer": args.mobile},
        )
        print("OpdaterBorgerNemSMS:", answer)
        answer = client.service.TilmeldNemSMS(
            CPRCVR={"CPR-nr": args.cpr},
            Myndighedstilmelding={"TilmeldingIndikator": True},
        )
        print("TilmeldNemSMS:", answer)
    except Fault as fault:
        print(f"platform fault: {fault.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
