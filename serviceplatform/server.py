"""Run the platform's WSGI application under gunicorn (threaded workers).

gthread workers keep connections alive and overlap the wait for an upstream peer with other
requests; several workers use the cores. Each worker builds its own ``Platform`` on its first
request (see ``serviceplatform.app``), so no database engine crosses a fork.

Every worker counts its own calls for ``/metrics``; ``serve`` gives the server's processes one
fresh directory for prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), so a
scrape answered by any worker adds up all of them (docs/operations.md).

**One listening socket per worker.** With one socket shared by every worker, the kernel hands
a new connection to whichever worker wakes first, and an idle worker usually does: a burst of
kept-alive connections (a reverse proxy's pool, a case system's connection pool) often lands
on one worker entirely while the others idle. Measured here with 2 workers and 8 connections
opened at once: all 8 on one worker in 9 of 30 tries, 4 and 4 in 8. So for a TCP address with
a fixed port and more than one worker, each worker listens on its own ``SO_REUSEPORT`` socket
(gunicorn's ``reuse_port``) and the kernel spreads connections over them by a hash of each
connection's addresses. Two costs: connections still queued on a worker's socket when that
worker stops are reset rather than served by another; and ``SO_REUSEPORT`` would let a second
server of the same user share the port silently, which is why ``serve`` first makes sure
nothing listens there (:func:`ensure_address_free`).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.util import is_ipv6, parse_address

from serviceplatform.app import PlatformApp, create_app
from serviceplatform.config import Settings
from serviceplatform.errors import ConfigurationError

log = logging.getLogger(__name__)

#: prometheus_client's multiprocess switch (see ``serviceplatform.observability.metrics``).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_METRICS_DIR_PREFIX = "serviceplatform-metrics-"


class PlatformServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self.settings)


def _warm_up(worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, PlatformApp):
        app.warm_up()
    # What start-up built lives as long as the worker: keep it out of every later collection.
    gc.freeze()


def _start_scheduler(settings: Settings) -> Any:
    def when_ready(_arbiter: Any) -> None:
        # In the master process: one scheduler per server, whatever its worker count.
        from serviceplatform import scheduling
        from serviceplatform.registry import scheduled_jobs

        scheduling.start(settings, scheduled_jobs())

    return when_ready


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _sweep_stale_metrics_dirs(base: Path) -> None:
    """Remove metrics directories our servers left behind (killed, or an earlier run's pid)."""
    for path in base.glob(f"{_METRICS_DIR_PREFIX}*"):
        pid = path.name[len(_METRICS_DIR_PREFIX) :]
        try:
            if not pid.isdigit() or path.is_symlink() or path.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if int(pid) == os.getpid() or not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def prepare_metrics_dir() -> tuple[Path, bool]:
    """Point ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory for this server's processes.

    Must run before any of them imports prometheus_client. An operator's directory is used
    as given and emptied of stale value files; otherwise a directory of this server, named by
    its pid, is made under the system temp directory. Returns it and whether it is ours to
    remove at exit.
    """
    if "prometheus_client" in sys.modules:
        log.warning(
            "prometheus_client was imported before %s was set: /metrics will miss calls",
            MULTIPROC_ENV,
        )
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path, False
    base = Path(tempfile.gettempdir())
    _sweep_stale_metrics_dirs(base)
    path = base / f"{_METRICS_DIR_PREFIX}{os.getpid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:  # not ours to wipe (another user's)
        path = Path(tempfile.mkdtemp(prefix=f"{_METRICS_DIR_PREFIX}{os.getpid()}-"))
    os.environ[MULTIPROC_ENV] = str(path)
    return path, True


def _metrics_child_exit(_arbiter: Any, worker: Any) -> None:
    # In the master, after a worker ended: its live gauges no longer count.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def tcp_address(bind: str) -> tuple[str, int] | None:
    """``bind``'s host and port when it is a TCP address (gunicorn's syntax), else None."""
    try:
        address = parse_address(bind)
    except (RuntimeError, ValueError):  # gunicorn itself reports a bad address
        return None
    if isinstance(address, tuple):
        return str(address[0]), int(address[1])
    return None  # a Unix socket path or an inherited file descriptor


def bind_problem(bind: str) -> str | None:
    """What is wrong with ``bind`` as an address to listen on, before anything starts; None
    when nothing is.

    gunicorn would report a malformed address on its own, but as its own ``Error:`` line, and
    a port outside 0-65535 would end in a traceback from the probe of ``ensure_address_free``.
    """
    try:
        address = parse_address(bind)
    except (RuntimeError, ValueError) as exc:
        return str(exc) or f"{bind!r} is not HOST:PORT"
    if isinstance(address, tuple) and not 0 <= int(address[1]) <= 65535:
        return f"port {address[1]} is not 0-65535"
    return None


def socket_per_worker(bind: str, workers: int) -> bool:
    """Whether each worker listens on its own socket (see the module's docstring).

    Not for port 0: each worker would get a port of its own.
    """
    address = tcp_address(bind)
    return (
        workers > 1 and address is not None and address[1] != 0 and hasattr(socket, "SO_REUSEPORT")
    )


def ensure_address_free(bind: str) -> None:
    """Refuse a TCP address some socket is bound to already, or one no socket can be bound to.

    A plain bind fails where any listener holds the port, ``SO_REUSEPORT`` or not; with
    ``SO_REUSEADDR``, as gunicorn binds, the closed connections of a previous run do not count.
    Any other failure (a host name that does not resolve, an address of another machine, a
    port the user may not take) is refused here too: with a socket per worker the master
    binds nothing, and gunicorn would restart the failing workers for ever.
    """
    address = tcp_address(bind)
    if address is None:
        return
    family = socket.AF_INET6 if is_ipv6(address[0]) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigurationError(
                    f"{bind} is in use: another server listens there (a platform already "
                    "running?); stop it or give serve another --bind"
                ) from None
            reason = exc.strerror or str(exc)
            raise ConfigurationError(
                f"cannot listen on {bind}: {reason}; give serve an address of this machine "
                "(--bind HOST:PORT)"
            ) from None


def serve(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    """Serve until SIGINT/SIGTERM; gunicorn handles both by stopping its workers cleanly.

    Raises ConfigurationError when ``bind`` is in use or cannot be listened on, before
    anything is started.
    """
    ensure_address_free(bind)
    if socket_per_worker(bind, workers):
        # gunicorn's own "Listening at:" line names the master's sockets, here none.
        log.info("listening at %s: each of the %d workers on its own socket", bind, workers)
    metrics_dir, owned = prepare_metrics_dir()
    master = os.getpid()
    try:
        _run(settings, bind=bind, workers=workers, threads=threads)
    finally:
        # Workers leave gunicorn's loop by SystemExit through here too: only the master cleans.
        if owned and os.getpid() == master:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    PlatformServer(
        settings,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "reuse_port": socket_per_worker(bind, workers),
            "worker_class": "gthread",
            "keepalive": 30,
            "graceful_timeout": 10,
            "loglevel": settings.logging.level.lower(),
            "accesslog": None,
            "proc_name": "serviceplatform",
            # One control socket per user would be shared by every platform on the machine.
            "control_socket_disable": True,
            "post_worker_init": _warm_up,
            "when_ready": _start_scheduler(settings),
            "child_exit": _metrics_child_exit,
        },
    ).run()
