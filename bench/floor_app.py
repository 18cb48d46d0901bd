"""The floor: the echo service plus one mutual-TLS PUT to the simulated register per request.

This is the least any SF2250 pass-through built from spyne and ``requests`` must do: spyne
parses and answers the SOAP call exactly as in ``bench.echo_app``, and in between
``requests`` PUTs an end user's master data to the sandbox's NemSMS register over
mutual TLS on a kept-alive connection. There is no token validation, replay cache, routing,
audit or logging. Measured in the same run as the echo baseline and the platform, it shows how
much of the echo's throughput is left for the platform's own work on this machine.

``bench/passthrough.py`` serves it under gunicorn with the platform's worker settings and
configures it through the environment (all required):

- ``BENCH_FLOOR_URL``: the register's base URL;
- ``BENCH_FLOOR_SYSID``: a SysID the register knows;
- ``BENCH_FLOOR_CERT``, ``BENCH_FLOOR_KEY``: a client certificate and key the register accepts;
- ``BENCH_FLOOR_CA``: the CA that issued the register's server certificate.

The SOAP request is the echo's, with a CPR number as its text (the end user to PUT).
"""

from __future__ import annotations

import os
import ssl

from spyne import Fault, ServiceBase, Unicode, rpc

from bench.echo_app import soap12_app
from serviceplatform.outbound.base import OutboundRequest
from serviceplatform.outbound.transport import ContextAdapter, prepare_request

STAMDATA = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<dkal:SlutbrugerStamdata xmlns:dkal="urn:oio:dkal:1.0.0">'
    b"<dkal:Navn>Anne Hansen</dkal:Navn><dkal:MobiltelefonNummer>12345678"
    b"</dkal:MobiltelefonNummer></dkal:SlutbrugerStamdata>"
)
HEADERS = {"Content-Type": "application/xml; charset=utf-8", "Accept": "application/xml"}
#: Connect and read timeouts: the 1 s SLA of a simple integration, as for the platform.
TIMEOUT = (1.0, 1.0)


class _Register:
    """Kept-alive mutual-TLS connections to the register, used the lean way.

    With the platform's own request preparation and transport adapter
    (``serviceplatform/outbound/transport.py``): one TLS context loaded once, and the prepared
    request straight to the adapter, skipping a ``Session``'s per-call merging, so the floor
    does no more than the platform does.
    """

    def __init__(self) -> None:
        context = ssl.create_default_context(cafile=os.environ["BENCH_FLOOR_CA"])
        context.load_cert_chain(os.environ["BENCH_FLOOR_CERT"], os.environ["BENCH_FLOOR_KEY"])
        self.adapter = ContextAdapter(context, pool_maxsize=16, max_retries=0)
        self.base = os.environ["BENCH_FLOOR_URL"].rstrip("/")
        self.boks_path = f"/register/{os.environ['BENCH_FLOOR_SYSID']}/boks/"

    def put_boks(self, cpr: str) -> int:
        request = OutboundRequest("PUT", self.boks_path + cpr, STAMDATA, HEADERS)
        prepared = prepare_request(request, self.base + request.path)
        answer = self.adapter.send(prepared, timeout=TIMEOUT, verify=True, proxies={})
        answer.content  # noqa: B018 - read the whole answer, as a real client must
        return answer.status_code


REGISTER = _Register()


class FloorService(ServiceBase):  # type: ignore[misc]
    @rpc(Unicode, _returns=Unicode)
    def echo(ctx, text):  # type: ignore[no-untyped-def]  # noqa: N805 - spyne's signature
        status = REGISTER.put_boks(text)
        if status not in (200, 201):
            raise Fault("soap:Receiver", f"the register answered HTTP {status}")
        return text


# The same spyne application as the echo baseline's, so the two differ by the PUT alone.
app = soap12_app(FloorService)
