"""Fuzz the SOAP front: mutated signed requests of every service through the WSGI application.

Run ``.venv/bin/python bench/fuzz.py --cases 10000 --seed 1`` (``--help`` for the options).
It starts the real sandbox as a child process (its simulated NemSMS register over mutual TLS,
OOTS gateway, PKI and seeded database), builds the platform's application in this process
from the sandbox's ``platform.toml`` (as ``bench/inprocess.py`` does), and for each case:

1. takes a valid request of one service operation (SF2250, SF1600 Print, OOTS Dokumentation),
2. either changes its Body *before* signing (so the signature holds and the content is what
   is hostile: huge, deep, odd characters, attribute floods, removed or duplicated elements)
   or changes the signed message *after* signing (byte flips, truncation, element
   duplication, removal and reordering, namespace and prefix changes, encodings),
3. calls the application through WSGI and checks the answer.

Everything is chosen by ``random.Random(seed)``: the same seed gives the same cases (the
timestamps and the sandbox's own ids differ between runs; the choices do not).

A case passes when the answer is a SOAP response without a fault, or a SOAP fault whose
detail is a ``ServiceplatformFault`` with an ``ErrorCode`` other than ``SP-900``; a refusal
before any outward call (SP-1xx, SP-2xx, SP-3xx, SP-50x) must have made no call to the
register (its request hook tells). After the run: no log record with a traceback (in this
process) and no ``Traceback`` in the sandbox's log, and the resident memory after warm-up
must not grow by more than ``--max-growth-mb``.

:func:`run_fuzz` is what ``tests/integration/test_fuzz.py`` calls with a few hundred cases.
"""

from __future__ import annotations

import argparse
import base64
import copy
import io
import json
import logging
import random
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

import requests  # noqa: E402
from cryptography import x509  # noqa: E402
from lxml import etree  # noqa: E402

from bench.passthrough import Child, _private_key, start, wait_until  # noqa: E402
from serviceplatform.app import PlatformApp  # noqa: E402
from serviceplatform.client.request_signer import (  # noqa: E402
    build_signed_envelope,
    mint_assertion,
)
from serviceplatform.config import load_settings  # noqa: E402

SPF: Final = "http://serviceplatformen.dk/xml/schemas/ServiceplatformFault/1/"
SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
#: Faults given before any outward call: the register must not have been called.
REFUSED_BEFORE_CALLING: Final = ("SP-1", "SP-2", "SP-3", "SP-50")
CPR: Final = "0101901234"


# --- the valid requests -----------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    #: The Body child, as XML text.
    body: str
    #: The SOAP versions the service's port accepts.
    versions: tuple[int, ...] = (12,)


def operations() -> list[Operation]:
    """One valid request per operation of every SOAP service (bodies as the WSDLs define)."""
    from integrations.oots.service import TNS as OOTS
    from integrations.sf2250.service import TNS as SF2250
    from integrations.sf2250.sf1600.service import TNS as PRINT
    from serviceplatform.sandbox.oots_network import ET_SE_DEGREE, REQ_DEGREE

    dkal = "urn:oio:dkal:1.0.0"
    subject = f"<t:CPRCVR><t:CPR-nr>{CPR}</t:CPR-nr></t:CPRCVR>"
    sf2250 = f'xmlns:t="{SF2250}" xmlns:d="{dkal}"'
    text = base64.b64encode(b"Husk din tid i morgen kl. 10.").decode()
    print_ns = (
        f'xmlns:p="{PRINT}" xmlns:f="urn:oio:fjernprint:1.0.0" xmlns:d="{dkal}" '
        'xmlns:a="urn:oio:adir:dagpenge:2009.07.01" xmlns:s="urn:oio:sagdok:3.0.0"'
    )
    cpr = f"<a:CPRnummerIdentifikator>{CPR}</a:CPRnummerIdentifikator>"
    oots = f'xmlns:o="{OOTS}"'
    return [
        Operation(
            "sf2250",
            "OpdaterBorgerNemSMS",
            f"<t:OpdaterBorgerNemSMSRequest {sf2250}>{subject}<d:SlutbrugerStamdata>"
            "<d:Navn>Anne Hansen</d:Navn><d:MobiltelefonNummer>12345678</d:MobiltelefonNummer>"
            "</d:SlutbrugerStamdata></t:OpdaterBorgerNemSMSRequest>",
        ),
        Operation(
            "sf2250",
            "TilmeldNemSMS",
            f"<t:TilmeldNemSMSRequest {sf2250}>{subject}<d:Myndighedstilmelding>"
            "<d:TilmeldingIndikator>true</d:TilmeldingIndikator></d:Myndighedstilmelding>"
            "</t:TilmeldNemSMSRequest>",
        ),
        Operation(
            "sf1600",
            "spoergTilmelding",
            f"<p:PrintSpoergTilmeldingRequest {print_ns}><p:TilmeldingRequest>"
            f"<d:SlutbrugerIdentitet>{cpr}</d:SlutbrugerIdentitet>"
            "</p:TilmeldingRequest></p:PrintSpoergTilmeldingRequest>",
            (11, 12),
        ),
        Operation(
            "sf1600",
            "afsendBrev",
            f"<p:PrintAfsendBrevRequest {print_ns}><p:BrevSPBody><p:Kanalvalg>D</p:Kanalvalg>"
            "<p:Prioritet>D</p:Prioritet><p:ForsendelseI>"
            "<f:AfsendelseIdentifikator>ID</f:AfsendelseIdentifikator>"
            f"<f:ForsendelseModtager><d:AfsendelseModtager>{cpr}"
            "</d:AfsendelseModtager></f:ForsendelseModtager>"
            f"<d:FilformatNavn>TXT</d:FilformatNavn><d:MeddelelseIndholdData>{text}"
            "</d:MeddelelseIndholdData><f:DokumentParametre><s:TitelTekst>Tid</s:TitelTekst>"
            "</f:DokumentParametre></p:ForsendelseI></p:BrevSPBody></p:PrintAfsendBrevRequest>",
            (11, 12),
        ),
        Operation(
            "oots",
            "FindBevistyper",
            f"<o:FindBevistyperRequest {oots}><o:ProcedureKode>T3</o:ProcedureKode>"
            f"<o:KravIdentifikator>{REQ_DEGREE}</o:KravIdentifikator>"
            "</o:FindBevistyperRequest>",
        ),
        Operation(
            "oots",
            "FindUdbydere",
            f"<o:FindUdbydereRequest {oots}><o:BevistypeKlassifikation>{ET_SE_DEGREE}"
            "</o:BevistypeKlassifikation><o:LandeKode>SE</o:LandeKode></o:FindUdbydereRequest>",
        ),
        Operation(
            "oots",
            "HentStatus",
            f"<o:HentStatusRequest {oots}><o:AnmodningId>ID</o:AnmodningId></o:HentStatusRequest>",
        ),
    ]


# --- mutations --------------------------------------------------------------------------------

Mutator = Callable[[random.Random, bytes], bytes]
TreeMutator = Callable[[random.Random, etree._Element], None]


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _pick(rng: random.Random, root: etree._Element, *, not_root: bool = True) -> etree._Element:
    candidates = _elements(root)[1:] if not_root else _elements(root)
    return rng.choice(candidates or [root])


def duplicate_element(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    parent = element.getparent()
    if parent is not None:
        parent.insert(parent.index(element) + rng.choice((0, 1)), copy.deepcopy(element))


def remove_element(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def reorder_children(rng: random.Random, root: etree._Element) -> None:
    parents = [e for e in _elements(root) if len(e) > 1]
    if parents:
        parent = rng.choice(parents)
        children = list(parent)
        rng.shuffle(children)
        parent[:] = children


def move_element(rng: random.Random, root: etree._Element) -> None:
    """Signature wrapping's move: an element taken to another place in the tree."""
    element = _pick(rng, root)
    targets = [e for e in _elements(root) if e is not element and element not in e.iterancestors()]
    parent = element.getparent()
    if parent is None or not targets:
        return
    parent.remove(element)
    rng.choice(targets).append(element)


def rename_namespace(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    name = etree.QName(element)
    namespace = rng.choice(["urn:fuzz", "", (name.namespace or "") + "x", SOAP11, SOAP12])
    element.tag = f"{{{namespace}}}{name.localname}" if namespace else name.localname


def rename_local(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    name = etree.QName(element)
    local = rng.choice([name.localname.upper(), name.localname + "x", "Body", "Signature", "a"])
    element.tag = f"{{{name.namespace}}}{local}" if name.namespace else local


def huge_text(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    size = rng.choice([1_000, 70_000, 300_000, 700_000])
    element.text = rng.choice(["A", "9", "æ", "\U0001f600", " "]) * size


def odd_text(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root)
    element.text = rng.choice(
        [
            "",
            " ",
            "0",
            "-1",
            "99999999999999999999999999",
            "1e309",
            "NaN",
            "true",
            "\u202e\u200b",
            "<![CDATA[x]]>",
            "&amp;lt;",
            "0101901234" * 3,
            "2026-02-30T25:61:00Z",
            "urn:uuid:" + "f" * 36,
            "%s%n%x",
            "'; DROP TABLE sendings; --",
            "\ufeff",
            "\ud7ff\ue000\ufffd",
        ]
    )


def deep_nesting(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root, not_root=False)
    depth = rng.choice([50, 255, 300, 2000])
    for _ in range(depth):
        element = etree.SubElement(element, "{urn:fuzz}d")


def attribute_flood(rng: random.Random, root: etree._Element) -> None:
    element = _pick(rng, root, not_root=False)
    count = rng.choice([10, 500, 5000])
    for index in range(count):
        element.set(f"{{urn:fuzz:{index % 7}}}a{index}", "v" * rng.choice([1, 100]))


def id_attributes(rng: random.Random, root: etree._Element) -> None:
    """A wsu:Id or ID where there was none, or a second element with an existing one."""
    wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
    element = _pick(rng, root)
    found = root.xpath("//@*[local-name()='Id' or local-name()='ID']")
    existing = [str(v) for v in found] if isinstance(found, list) else []
    value = rng.choice(existing) if existing and rng.random() < 0.7 else "_fuzz"
    element.set(rng.choice([f"{{{wsu}}}Id", "ID", "Id", "id"]), value)


TREE_MUTATORS: Final[dict[str, TreeMutator]] = {
    "duplicate": duplicate_element,
    "remove": remove_element,
    "reorder": reorder_children,
    "move": move_element,
    "namespace": rename_namespace,
    "localname": rename_local,
    "huge": huge_text,
    "text": odd_text,
    "deep": deep_nesting,
    "attributes": attribute_flood,
    "ids": id_attributes,
}


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 8, 64])):
        position = rng.randrange(len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data))
    junk = rng.choice(
        [
            b"\x00",
            b"\xff\xfe",
            b"<",
            b"]]>",
            b"&",
            b"&#0;",
            b"&xxe;",
            b"<!-- c -->",
            b"<?pi x?>",
            b"<![CDATA[<a>]]>",
            b'<!DOCTYPE x [<!ENTITY e "e">]>',
            bytes(rng.randrange(256) for _ in range(16)),
        ]
    )
    return data[:position] + junk + data[position:]


def change_prefixes(rng: random.Random, data: bytes) -> bytes:
    """The same document with other prefixes (or a default namespace) for one namespace."""
    root = etree.fromstring(data)
    namespaces = sorted({ns for e in _elements(root) if (ns := etree.QName(e).namespace)})
    target = rng.choice(namespaces)
    prefix = rng.choice([None, "x", "soap", "wsse", "ds"])
    rebuilt = _renamespaced(root, target, prefix)
    return etree.tostring(rebuilt, xml_declaration=rng.random() < 0.5, encoding="utf-8")


def _renamespaced(element: etree._Element, target: str, prefix: str | None) -> etree._Element:
    nsmap: dict[str | None, str] = {
        p: n for p, n in element.nsmap.items() if n != target and p != prefix
    }
    nsmap[prefix] = target
    # lxml takes None as the default namespace's prefix; its stubs do not say so.
    copied = etree.Element(element.tag, dict(element.attrib), nsmap=nsmap)  # type: ignore[arg-type,misc]
    copied.text, copied.tail = element.text, element.tail
    for child in element:
        if isinstance(child.tag, str):
            copied.append(_renamespaced(child, target, prefix))
        else:
            copied.append(copy.deepcopy(child))
    return copied


def reencode(rng: random.Random, data: bytes) -> bytes:
    """Another encoding: UTF-16 (with its declaration or without), a BOM, Latin-1, a lie."""
    text = data.decode("utf-8")
    body = text.split("?>", 1)[1] if text.startswith("<?xml") else text
    choice = rng.randrange(6)
    if choice == 0:
        return ('<?xml version="1.0" encoding="UTF-16"?>' + body).encode("utf-16")
    if choice == 1:
        return body.encode("utf-16-le")
    if choice == 2:
        return b"\xef\xbb\xbf" + body.encode("utf-8")
    if choice == 3:
        return ('<?xml version="1.0" encoding="ISO-8859-1"?>' + body).encode("latin-1", "replace")
    if choice == 4:
        return ('<?xml version="1.0" encoding="EBCDIC-fuzz"?>' + body).encode("utf-8")
    return ('<?xml version="1.1" encoding="utf-8"?>' + body).encode("utf-8")


def tree(mutator: TreeMutator) -> Mutator:
    def mutate(rng: random.Random, data: bytes) -> bytes:
        root = etree.fromstring(data)
        mutator(rng, root)
        return etree.tostring(root, encoding="utf-8")

    return mutate


BYTE_MUTATORS: Final[dict[str, Mutator]] = {
    "flip": flip_bytes,
    "truncate": truncate,
    "insert": insert_bytes,
    "prefixes": change_prefixes,
    "encoding": reencode,
    **{f"signed-{name}": tree(mutator) for name, mutator in TREE_MUTATORS.items()},
}


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Report:
    cases: int = 0
    #: Cases by outcome: "ok", "fault SP-xxx", or a problem.
    outcomes: Counter[str] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    rss_mb: list[tuple[int, float]] = field(default_factory=list)
    outward_calls: int = 0

    @property
    def memory_growth_mb(self) -> float:
        if len(self.rss_mb) < 2:
            return 0.0
        return self.rss_mb[-1][1] - self.rss_mb[0][1]

    def summary(self) -> str:
        faults = sorted((k, v) for k, v in self.outcomes.items() if k.startswith("fault"))
        lines = [
            f"cases {self.cases}, answered ok {self.outcomes['ok']}, "
            f"faults {sum(v for _, v in faults)}, problems {len(self.problems)}, "
            f"register calls {self.outward_calls}",
            "faults: " + ", ".join(f"{k[6:]} {v}" for k, v in faults),
            "mutations: " + ", ".join(f"{k} {v}" for k, v in sorted(self.mutations.items())),
            "RSS MB: "
            + ", ".join(f"{n}:{mb:.1f}" for n, mb in self.rss_mb)
            + f" (growth after warm-up {self.memory_growth_mb:+.1f})",
        ]
        lines += [f"PROBLEM {p}" for p in self.problems[:50]]
        return "\n".join(lines)


class LogWatch(logging.Handler):
    """Every log record of this process that carries a traceback or names SP-900."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.bad: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info or record.stack_info or "Traceback" in message or "SP-900" in message:
            self.bad.append(f"{record.name}: {message[:300]}")


@dataclass
class Target:
    """The application under test and what it needs to be called."""

    app: PlatformApp
    manifest: dict[str, Any]
    control_url: str
    session: requests.Session

    def register_calls(self) -> int:
        """The calls the register received since the last look (its log is then emptied,
        so that each look stays cheap however long the run)."""
        answer = self.session.get(f"{self.control_url}/requests", timeout=10)
        answer.raise_for_status()
        count = len(answer.json())
        if count:
            self.session.delete(f"{self.control_url}/requests", timeout=10).raise_for_status()
        return count


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Signer:
    """Signs bodies for each service with a token minted once by the sandbox STS."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        pki = manifest["pki"]
        self._holder = _private_key(pki["client_key"])
        sts_key = _private_key(pki["sts_key"])
        sts_cert = x509.load_pem_x509_certificate(Path(pki["sts_cert"]).read_bytes())
        holder_cert = x509.load_pem_x509_certificate(Path(pki["client_cert"]).read_bytes())
        self._tokens: dict[str, etree._Element] = {}
        for key, service in manifest["services"].items():
            cvr = next(
                (a["cvr"] for a in manifest["authorities"] if key in a.get("services", [])),
                manifest["authorities"][0]["cvr"],
            )
            self._tokens[key] = mint_assertion(
                sts_key=sts_key,
                sts_cert=sts_cert,
                issuer=pki["sts_issuer"],
                audience=service["entity_id"],
                authority_cvr=cvr,
                holder_cert=holder_cert,
            )

    def sign(
        self, operation: Operation, body: etree._Element, url: str, version: int, message_id: str
    ) -> bytes:
        return build_signed_envelope(
            body,
            soap_version=version,
            assertion=self._tokens[operation.service],
            holder_key=self._holder,
            to=url,
            action=f"urn:fuzz:{operation.name}",
            message_id=message_id,
        )


def environ_for(url: str, body: bytes, content_type: str) -> dict[str, Any]:
    """A WSGI environ of a POST to ``url``, as gunicorn would pass it."""
    parts = urlsplit(url)
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": parts.path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": parts.hostname or "127.0.0.1",
        "SERVER_PORT": str(parts.port or 80),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": parts.netloc,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": parts.scheme or "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(app: PlatformApp, url: str, body: bytes, content_type: str) -> tuple[str, bytes]:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda _data: None

    result = app(environ_for(url, body, content_type), start_response)
    try:
        answer = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if callable(close):
            close()
    return (status[0] if status else ""), answer


def judge(status: str, answer: bytes) -> str:
    """``ok``, ``fault SP-xxx``, or ``problem: ...``: what the answer is."""
    try:
        root = etree.fromstring(answer, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError:
        return f"problem: {status} answer is not XML: {answer[:120]!r}"
    name = etree.QName(root)
    if name.localname != "Envelope" or name.namespace not in (SOAP11, SOAP12):
        return f"problem: {status} answer is not a SOAP envelope"
    body = root.find(f"{{{name.namespace}}}Body")
    if body is None or len(body) != 1:
        return f"problem: {status} answer has no single Body child"
    if etree.QName(body[0]).localname != "Fault":
        return "ok" if status.startswith("200") else f"problem: {status} without a fault"
    code = body[0].findtext(f".//{{{SPF}}}ErrorCode")
    if not code:
        return f"problem: {status} fault without a ServiceplatformFault ErrorCode"
    if code == "SP-900":
        return f"problem: SP-900 {body[0].findtext(f'.//{{{SPF}}}ErrorText')}"
    return f"fault {code}"


def content_type(version: int, operation: Operation, rng: random.Random) -> str:
    if rng.random() < 0.03:
        return rng.choice(["text/plain", "", "application/soap+xml; charset=ebcdic", "x/y; a"])
    if version == 11:
        return "text/xml; charset=utf-8"
    return f'application/soap+xml; charset=utf-8; action="urn:fuzz:{operation.name}"'


def run_cases(target: Target, cases: int, seed: int, report: Report) -> None:
    """``cases`` mutated requests, chosen by ``seed``, into ``report``."""
    rng = random.Random(seed)
    signer = Signer(target.manifest)
    ops = [op for op in operations() if op.service in target.manifest["services"]]
    warm_up = max(1, min(500, cases // 10))
    target.register_calls()
    for index in range(cases):
        operation = rng.choice(ops)
        version = rng.choice(operation.versions)
        url = target.manifest["services"][operation.service]["url"]
        body = etree.fromstring(
            operation.body.replace(">ID<", f">{uuid.UUID(int=rng.getrandbits(128))}<")
        )
        message_id = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        roll = rng.random()
        if roll < 0.1:
            mutation = "none"
            payload = signer.sign(operation, body, url, version, message_id)
        elif roll < 0.45:
            mutation = rng.choice(sorted(TREE_MUTATORS))
            TREE_MUTATORS[mutation](rng, body)
            mutation = "body-" + mutation
            payload = signer.sign(operation, body, url, version, message_id)
        else:
            mutation = rng.choice(sorted(BYTE_MUTATORS))
            signed = signer.sign(operation, body, url, version, message_id)
            payload = BYTE_MUTATORS[mutation](rng, signed)
        report.mutations[mutation] += 1
        status, answer = call(target.app, url, payload, content_type(version, operation, rng))
        verdict = judge(status, answer)
        report.cases += 1
        called = target.register_calls()
        report.outward_calls += called
        refused_early = verdict.startswith("fault") and verdict[6:].startswith(
            REFUSED_BEFORE_CALLING
        )
        if refused_early and called:
            verdict = f"problem: {verdict[6:]} refused, yet the register was called"
        elif mutation == "none" and verdict[6:].startswith(("SP-1", "SP-2")):
            # The baseline must pass the front, or the fuzzer tests nothing but garbage.
            verdict = f"problem: the unchanged request was refused with {verdict[6:]}"
        if verdict.startswith("problem"):
            report.problems.append(f"case {index} ({operation.name}, {mutation}): {verdict}")
            report.outcomes["problem"] += 1
        else:
            report.outcomes[verdict] += 1
        if index + 1 == warm_up or (index + 1) % 1000 == 0 or index + 1 == cases:
            report.rss_mb.append((index + 1, rss_mb()))


@contextmanager
def sandbox(scratch: Path) -> Iterator[tuple[Child, dict[str, Any]]]:
    argv = [sys.executable, "-m", "serviceplatform.cli", "sandbox", "--workdir"]
    argv += [str(scratch / "sandbox"), "--port", "0", "--workers", "1", "--threads", "2"]
    child = start("the sandbox", argv, scratch / "sandbox.log")
    try:
        manifest_path = scratch / "sandbox" / "sandbox.json"
        wait_until(child, manifest_path.exists)
        yield child, json.loads(manifest_path.read_text(encoding="utf-8"))
    finally:
        child.stop()


def run_fuzz(
    cases: int, seed: int, *, max_growth_mb: float | None = None, scratch: Path | None = None
) -> Report:
    """Start a sandbox, run ``cases`` fuzz cases by ``seed``, return what was seen.

    Problems (the pass rule of the module docstring) are in ``Report.problems``; memory is
    judged only when ``max_growth_mb`` is given.
    """
    with tempfile.TemporaryDirectory(prefix="sp-fuzz-") as tmp:
        work = scratch or Path(tmp)
        report = Report()
        watch = LogWatch()
        root = logging.getLogger()
        level = root.level
        root.addHandler(watch)
        # INFO too: a traceback logged below WARNING is still a traceback in a log.
        root.setLevel(min(level, logging.INFO) if level else logging.INFO)
        try:
            with sandbox(work) as (child, manifest):
                settings = load_settings(manifest["config"])
                app = PlatformApp(settings)
                session = requests.Session()
                session.trust_env = False
                control = manifest["peers"]["nemsms"]["control_url"]
                try:
                    run_cases(Target(app, manifest, control, session), cases, seed, report)
                finally:
                    app.close()
                    session.close()
                child.check_alive()
            log = (work / "sandbox.log").read_text(errors="replace")
        finally:
            root.removeHandler(watch)
            root.setLevel(level)
        report.problems += [f"log record: {line}" for line in watch.bad]
        if "Traceback" in log:
            start_at = log.index("Traceback")
            report.problems.append(f"sandbox log: {log[start_at : start_at + 600]}")
        if max_growth_mb is not None and report.memory_growth_mb > max_growth_mb:
            report.problems.append(
                f"memory grew {report.memory_growth_mb:.1f} MB after warm-up "
                f"(limit {max_growth_mb} MB)"
            )
        return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--max-growth-mb", type=float, default=32.0, help="resident memory growth allowed"
    )
    args = parser.parse_args(argv)
    report = run_fuzz(args.cases, args.seed, max_growth_mb=args.max_growth_mb)
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
