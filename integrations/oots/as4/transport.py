"""The one HTTP call of the AS4 sender: POST a packed message, return the partner's answer.

Kept to one function on purpose: the platform's outbound package (``serviceplatform.outbound``)
is being reshaped into a credential-based seam, and this is the single place to re-point then.
Until then it uses the pieces that package already offers: ``read_bounded`` (size cap on the
answer) and ``translate_exception`` (library errors -> one SP-4xx error).

Unlike the other peers, an AS4 partner's non-2xx answer is meaningful (Domibus answers an
``eb:Error`` signal with HTTP 500), so every HTTP answer is returned as it is and the sender
reads it; only failures without an answer raise. The session ignores the environment
(``trust_env = False``), verifies TLS against ``ca_cert`` when given, sends a client certificate
when given (two-way TLS is optional in AS4) and never follows redirects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import requests

from serviceplatform.errors import UpstreamBadResponse
from serviceplatform.outbound.bounded import AnswerTooLarge, read_bounded
from serviceplatform.outbound.translate import translate_exception

#: A receipt or an error signal is a few KB; anything near this is not one.
MAX_ANSWER_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class HttpTarget:
    """Where and how to reach a partner's access point."""

    url: str
    ca_cert: str | None = None
    #: (certificate file, key file) for two-way TLS, when the partner asks for it.
    client_cert: tuple[str, str] | None = None
    connect_timeout: float = 5.0
    timeout: float = 60.0


class Post(Protocol):
    """The shape of ``post_message``, so tests and a future outbound seam can stand in."""

    def __call__(self, target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer: ...


def post_message(target: HttpTarget, content_type: str, body: bytes) -> HttpAnswer:
    """POST ``body`` to ``target``; the answer whatever its status, or one SP-4xx error."""
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.post(
                target.url,
                data=body,
                headers={"Content-Type": content_type, "MIME-Version": "1.0"},
                timeout=(target.connect_timeout, target.timeout),
                verify=target.ca_cert or True,
                cert=target.client_cert,
                allow_redirects=False,
                stream=True,
            )
            try:
                answer = read_bounded(response, MAX_ANSWER_BYTES)
            finally:
                response.close()
        except AnswerTooLarge as exc:
            raise UpstreamBadResponse(f"AS4 answer: {exc}") from exc
        except (requests.RequestException, OSError) as exc:
            raise translate_exception(exc, "as4") from exc
    content_type_answer = response.headers.get("Content-Type", "")
    return HttpAnswer(response.status_code, content_type_answer, answer)
