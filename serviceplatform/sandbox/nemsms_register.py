"""A simulated NemSMS register: OIOREST over mutual TLS, plus the sandbox's test hooks.

The register listens on HTTPS and requires a client certificate from the sandbox CA, as the
real one requires the platform's FOCES certificate. It keeps end users and subscription
lists in memory, answers subscription queries (EP_NS1) and sends SMS (EP_NS4, only inside
NemSMS's sending hours by the register's clock), and answers errors with ``dkal:Fejl``
documents. A second, plain-HTTP server on loopback serves the test hooks of SANDBOX.md
(``/_sandbox/requests``, ``subscriptions``, ``faults``, ``clock``, ``sms``) over the same
state. Resources, codes and formats: ``docs/nemsms-register.md``.

This module runs the two servers together; the pieces are
:mod:`~serviceplatform.sandbox.register_state` (the shared state),
:mod:`~serviceplatform.sandbox.register_resources` (the register) and
:mod:`~serviceplatform.sandbox.register_hooks` (the test hooks).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from serviceplatform.sandbox.httpserver import (
    ServerGroup,
    ServerThread,
    ThreadedServer,
    server_tls_context,
)
from serviceplatform.sandbox.register_hooks import hooks_handler
from serviceplatform.sandbox.register_resources import register_handler
from serviceplatform.sandbox.register_state import (
    FEJL_NS,
    REGISTER_NS,
    XML_TYPE,
    EndUser,
    ListSnapshot,
    RegisterFault,
    RegisterState,
    Sending,
    Subject,
    fejl_xml,
)

# The register's vocabulary lives in register_state; it stays importable from here for
# callers written before the split.
__all__ = [
    "FEJL_NS",
    "REGISTER_NS",
    "XML_TYPE",
    "EndUser",
    "ListSnapshot",
    "NemSmsRegister",
    "RegisterFault",
    "RegisterState",
    "Sending",
    "Subject",
    "fejl_xml",
]


class NemSmsRegister(ServerGroup):
    """The register (HTTPS, client certificate required) and its hooks (HTTP, loopback)."""

    def __init__(
        self,
        *,
        server_cert: Path,
        server_key: Path,
        client_ca: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        known_sysids: set[str] | None = None,
        max_recorded: int = 100_000,
        list_part_size: int = 1000,
        clock: Callable[[], datetime] | None = None,
        clock_dir: Path | None = None,
    ) -> None:
        """``clock`` answers the register's time (aware); default ``datetime.now(UTC)``.

        ``clock_dir`` (a sandbox's work directory) shares a clock fixed by the hook with the
        commands run with ``--workdir`` (``serviceplatform.commands.workdir_clock``).
        """
        self.state = RegisterState(known_sysids, max_recorded, list_part_size, clock, clock_dir)
        context = server_tls_context(server_cert, server_key, client_ca)
        register = register_handler(self.state)
        control = hooks_handler(self.state, self.stats)
        self._host = host
        self._register = ServerThread(
            ThreadedServer((host, port), register, ssl_context=context), "nemsms-register"
        )
        # The hooks change the register's state: never reachable from outside the machine.
        self._control = ServerThread(
            ThreadedServer(("127.0.0.1", control_port), control), "nemsms-register-hooks"
        )
        super().__init__(self._register, self._control)

    @property
    def base_url(self) -> str:
        return f"https://{self._host}:{self._register.port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self._control.port}/_sandbox"

    @property
    def connections_accepted(self) -> int:
        """TLS connections whose handshake succeeded (each may carry many requests)."""
        return self._register.server.connections_accepted

    def stats(self) -> dict[str, int]:
        server, state = self._register.server, self.state
        with state.lock:
            return {
                "connections_accepted": server.connections_accepted,
                "handshake_failures": server.handshake_failures,
                "requests_received": state.requests_received,
                "end_users": len(state.users),
            }
