"""A case system sending a NemSMS through the sandbox (SF1600 Print: spoergTilmelding, afsendBrev).

Run ``make sandbox`` in one terminal, subscribe the citizen with
``examples/sf2250_client.py``, then::

    .venv/bin/python -m examples.sf1600_sms_client [--workdir .sandbox] [--cpr CPR] [--text ...]

It builds a zeep client from the Print service's ``?wsdl`` (SOAP 1.1, as the contract
declares), asks whether the citizen is subscribed to NemSMS and, if so, sends the text as an
SMS (``Kanalvalg`` D, ``Prioritet`` D, file format TXT). NemSMS sends only between 08:00 and
22:00 Danish time; outside those hours the platform answers fault SP-503.

The case system's calls are the same on both of the platform's print routes; which one an
authority's calls take is the platform's choice per agreement (``print_route`` in
``sandbox.json``). ``--print-route sf1601`` picks the sandbox authority whose calls go to the
simulated SF1601 (PostForespoerg, KombiPostAfsend with a NEMSMS MeMo, token-secured); there
the text is at most 150 characters (fault SP-510).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path

from zeep.exceptions import Fault

from examples.sf2250_client import load_manifest, make_client


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(".sandbox"))
    parser.add_argument("--cvr", help="authority CVR (default: the sandbox's first authority)")
    parser.add_argument(
        "--print-route",
        choices=("sf1600", "sf1601"),
        help="use the sandbox authority whose print calls take this route",
    )
    parser.add_argument("--cpr", default="0101901234", help="the citizen to send to")
    parser.add_argument("--text", default="Husk din tid i morgen kl. 10.", help="at most 160 chars")
    parser.add_argument("--id", default=None, help="AfsendelseIdentifikator (default: new)")
    args = parser.parse_args(argv)

    manifest = load_manifest(args.workdir)
    cvr = args.cvr or manifest["authorities"][0]["cvr"]
    if args.print_route and not args.cvr:
        chosen = [a for a in manifest["authorities"] if a.get("print_route") == args.print_route]
        if not chosen:
            print(f"no sandbox authority uses {args.print_route}", file=sys.stderr)
            return 2
        cvr = chosen[0]["cvr"]
    client = make_client(manifest, cvr, "sf1600")
    try:
        tilmeldt = client.service.spoergTilmelding(
            AuthorityContext={"MunicipalityCVR": cvr},
            TilmeldingRequest={"SlutbrugerIdentitet": {"CPRnummerIdentifikator": args.cpr}},
        )
        print("spoergTilmelding:", tilmeldt)
        if not tilmeldt:
            print("not subscribed to NemSMS: nothing sent", file=sys.stderr)
            return 2
        resultat = client.service.afsendBrev(
            AuthorityContext={"MunicipalityCVR": cvr},
            BrevSPBody={
                "Kanalvalg": "D",
                "Prioritet": "D",
                "ForsendelseI": {
                    "AfsendelseIdentifikator": args.id or f"sms-{uuid.uuid4().hex[:20]}",
                    "ForsendelseModtager": {
                        "AfsendelseModtager": {"CPRnummerIdentifikator": args.cpr}
                    },
                    "FilformatNavn": "TXT",
                    "MeddelelseIndholdData": args.text.encode("utf-8"),
                    "DokumentParametre": {"TitelTekst": "NemSMS"},
                },
            },
        )
        print("afsendBrev:", resultat)
    except Fault as fault:
        print(f"platform fault: {fault.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
