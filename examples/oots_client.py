"""A case system asking for evidence from another EU country through the sandbox's OOTS service.

Run ``make sandbox`` in one terminal, then in another::

    .venv/bin/python -m examples.oots_client [--workdir .sandbox] [--decision approve]

The whole journey, as a municipality's case system and its citizen portal would make it:

1. ``FindBevistyper``: the requirements of procedure T3 and the evidence types proving them;
2. ``FindUdbydere``: the Finnish providers of the degree certificate;
3. ``AnmodBevis``: request the certificate for the citizen; the university wants a preview;
4. the portal redirects the citizen to the preview page; here a script plays the citizen:
   it opens the page and submits the approve (or decline) form with ``requests``;
5. ``AnmodBevisEfterForhaandsvisning``: the second request; the PDF arrives (or the error);
6. ``HentStatus``: the state of the request, asked again.

Token and signature as in ``sf2250_client.py`` (zeep + WS-Security, holder of key).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

import requests
from lxml import etree
from zeep.exceptions import Fault

from examples.sf2250_client import load_manifest, make_client

PROCEDURE = "T3"
COUNTRY = "FI"
CITIZEN = {
    "Fornavn": "Aino",
    "Efternavn": "Virtanen",
    "Foedselsdato": date(1990, 5, 17),
    "EidasIdentifikator": "FI/DK/170590123A",
}


def follow_preview(
    location: str, decision: str, ca_cert: str, return_url: str | None
) -> requests.Response:
    """What the citizen does after the portal's redirect: open the page, press a button."""
    browser = requests.Session()
    browser.trust_env = False  # the machine's CA bundle and proxies are not ours to use
    browser.verify = ca_cert
    params = {"returnUrl": return_url} if return_url else {}
    page = browser.get(location, params=params, timeout=10)
    page.raise_for_status()
    form = etree.HTML(page.text).find(".//form")
    if form is None:
        raise SystemExit(f"the preview page at {location} has no form")
    data = {
        str(field.get("name")): str(field.get("value"))
        for field in form.iter("input")
        if field.get("type") == "hidden"
    }
    data["decision"] = decision
    return browser.post(form.get("action") or location, data=data, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".sandbox"))
    parser.add_argument("--cvr", default="29189846", help="authority with an OOTS agreement")
    parser.add_argument("--decision", choices=("approve", "decline"), default="approve")
    parser.add_argument("--return-url", help="the portal address the preview sends back to")
    parser.add_argument("--out", type=Path, help="write the evidence document here")
    args = parser.parse_args(argv)

    manifest = load_manifest(args.workdir)
    client = make_client(manifest, args.cvr, service_key="oots")
    gateway = manifest["peers"]["oots_gateway"]
    try:
        found = client.service.FindBevistyper(ProcedureKode=PROCEDURE)
        requirement = found[0]
        evidence_type = next(t for t in requirement.Bevistype if t.LandeKode == COUNTRY)
        print(f"requirement {requirement.Identifikator}: {evidence_type.Titel[0].Tekst}")
        providers = client.service.FindUdbydere(
            BevistypeKlassifikation=evidence_type.Klassifikation, LandeKode=COUNTRY
        )
        provider = providers.Udbyder[0]
        print(f"provider {provider.Identifikator} ({provider.Navn}, {provider.EDMVersion})")
        answer: Any = client.service.AnmodBevis(
            Person=CITIZEN,
            ProcedureKode=PROCEDURE,
            KravIdentifikator=requirement.Identifikator,
            BevistypeKlassifikation=evidence_type.Klassifikation,
            LandeKode=COUNTRY,
            UdbyderIdentifikator=provider.Identifikator,
            EksplicitAnmodning=True,
            ForhaandsvisningMulig=True,
        )
        print(f"AnmodBevis {answer.AnmodningId}: {answer.Status}")
        if answer.Status == "ForhaandsvisningKraevet":
            location = answer.Forhaandsvisning.Placering
            print(f"redirecting the citizen to {location}")
            back = follow_preview(
                location, args.decision, gateway["preview_ca_cert"], args.return_url
            )
            print(f"citizen pressed {args.decision}: HTTP {back.status_code} at {back.url}")
            answer = client.service.AnmodBevisEfterForhaandsvisning(
                AnmodningId=answer.AnmodningId, ReturAdresse=args.return_url
            )
        status = client.service.HentStatus(AnmodningId=answer.AnmodningId)
        print(f"HentStatus: {status.Status}")
        if status.Bevis is not None:
            document = status.Bevis.Dokument
            print(f"evidence: {status.Bevis.MedieType}, {len(document)} bytes")
            if args.out is not None:
                args.out.write_bytes(document)
    except Fault as fault:
        print(f"platform fault: {fault.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
