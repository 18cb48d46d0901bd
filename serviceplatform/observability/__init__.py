"""Operations: Prometheus metrics (``/metrics``) and readiness (``/readyz``); docs/operations.md.

The platform's core modules import nothing from here at import time: ``prometheus_client``
chooses between single-process and multiprocess mode when it is first imported, so it must not
be imported before ``serviceplatform.server.serve`` has set ``PROMETHEUS_MULTIPROC_DIR``.
"""
