"""The baseline: a bare spyne SOAP 1.2 echo service with schema validation, nothing else.

Served under the same gunicorn settings as the platform, it measures what spyne and the
server cost on their own, so the pass-through benchmark can report a ratio.
"""

from __future__ import annotations

from spyne import Application, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap12
from spyne.server.wsgi import WsgiApplication

NAMESPACE = "urn:serviceplatform:bench:echo"


class EchoService(ServiceBase):  # type: ignore[misc]
    @rpc(Unicode, _returns=Unicode)
    def echo(ctx, text):  # type: ignore[no-untyped-def]  # noqa: N805 - spyne's signature
        return text


def soap12_app(service: type[ServiceBase]) -> WsgiApplication:
    """``service`` as the baseline serves it: SOAP 1.2 in and out, lxml schema validation."""
    return WsgiApplication(
        Application(
            [service],
            tns=NAMESPACE,
            in_protocol=Soap12(validator="lxml"),
            out_protocol=Soap12(),
        )
    )


app = soap12_app(EchoService)


def echo_request(text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
        f'<s:Body><e:echo xmlns:e="{NAMESPACE}"><e:text>{text}</e:text></e:echo></s:Body>'
        "</s:Envelope>"
    ).encode()
