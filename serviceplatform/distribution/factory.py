"""The distributor the settings describe: the one module that knows every transport.

It sits beside :mod:`serviceplatform.distribution.base` rather than in it because the
implementations import ``base``; a factory there made ``base`` import them back.
"""

from __future__ import annotations

from serviceplatform.config import Settings
from serviceplatform.distribution.base import Distributor
from serviceplatform.distribution.choices import unknown_transport
from serviceplatform.distribution.file_drop import FileDropDistributor
from serviceplatform.errors import ConfigurationError


def distributor_from_settings(settings: Settings) -> Distributor:
    """The distributor ``settings.distributor`` describes; connects to nothing yet.

    ``file`` writes to ``[distributor] directory``; ``amqp`` talks to the broker of
    ``[distributor.amqp]`` with the token source named there. Paths are resolved against the
    settings file's directory. Anything else is a ``ConfigurationError``.
    """
    transport = settings.distributor.transport
    if transport == "file":
        return FileDropDistributor(settings.path(settings.distributor.directory))
    if transport == "amqp":
        # Imported here: pika is imported only when AMQP is configured.
        from serviceplatform.distribution.amqp import AmqpDistributor
        from serviceplatform.distribution.tokens import token_source_from_settings

        return AmqpDistributor(
            settings.distributor.amqp,
            token_source_from_settings(settings),
            base_dir=settings.base_dir,
        )
    raise ConfigurationError(f"[distributor] transport: {unknown_transport(transport)}")
