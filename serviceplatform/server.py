"""Run the platform's WSGI application under gunicorn (threaded workers).

gthread workers keep connections alive and overlap the wait for an upstream peer with other
requests; several workers use the cores. Each worker builds its own ``Platform`` on its first
request (see ``serviceplatform.app``), so no database engine crosses a fork.
"""

from __future__ import annotations

import gc
from typing import Any

from gunicorn.app.base import BaseApplication

from serviceplatform.app import PlatformApp, create_app
from serviceplatform.config import Settings


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


def serve(settings: Settings, *, bind: str, workers: int, threads: int) -> None:
    """Serve until SIGINT/SIGTERM; gunicorn handles both by stopping its workers cleanly."""
    PlatformServer(
        settings,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
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
        },
    ).run()
