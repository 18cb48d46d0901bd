"""The user's answers to the DSD's classification questions: to the DSD, into the EDM request."""

from __future__ import annotations

from typing import Any

from integrations.oots.common_services import (
    ClassificationConcept,
    Distribution,
    ProviderInfo,
    ProvidersFound,
)
from integrations.oots.edm import LocalizedText
from integrations.oots.handler import OotsHandler
from integrations.oots.messages import Attribute, ClassificationAnswer, FindUdbydere

LEVEL = "https://sr.example/concept/level"
FIELD = "https://sr.example/concept/field"


def provider(*concepts: ClassificationConcept) -> ProviderInfo:
    return ProviderInfo(
        provider_id="SE-UHR",
        provider_scheme="urn:cef.eu:names:identifier:EAS:0007",
        provider_name="UHR",
        country="SE",
        access_service_id="AP_SE_01",
        access_service_scheme="urn:oasis:names:tc:ebcore:partyid-type:unregistered:oots",
        conforms_to=("oots-edm:v2.0",),
        evidence_type_classification="https://sr.example/et/degree",
        distributed_as=(Distribution("application/pdf"),),
        classifications=concepts,
    )


def test_answers_to_concepts_the_provider_publishes_go_into_the_request() -> None:
    level = ClassificationConcept(
        LEVEL, "Code", "Level", (LocalizedText("Level of the degree"),), ("BACHELOR", "MASTER")
    )
    untyped = ClassificationConcept(FIELD, None, None)
    found = provider(level, untyped).provider_classifications(
        [
            (LEVEL, "MASTER"),
            (FIELD, "LAW"),  # published without a type: DSD query only
            ("https://sr.example/concept/other", "X"),  # not published
        ]
    )
    assert [(c.identifier, c.type, c.value, c.value_expression) for c in found] == [
        (LEVEL, "Code", "MASTER", "Level")
    ]
    assert found[0].descriptions == (LocalizedText("Level of the degree"),)


class RecordingClient:
    def __init__(self) -> None:
        self.asked: list[dict[str, str] | None] = []

    def providers(
        self, classification: str, country: str, *, attributes: dict[str, str] | None = None
    ) -> ProvidersFound:
        self.asked.append(attributes)
        return ProvidersFound(providers=())


def test_the_dsd_is_asked_with_every_answer_and_the_region() -> None:
    client = RecordingClient()
    handler: Any = object.__new__(OotsHandler)
    handler._client = lambda call: client
    handler._providers(None, "et", "FI", FindUdbydere("et", "FI"))
    given = FindUdbydere(
        "et",
        "FI",
        Attribute(context_id="ctx-1", level="NUTS2", value="FI1B"),
        (ClassificationAnswer(LEVEL, "MASTER"),),
    )
    handler._providers(None, "et", "FI", given)
    assert client.asked == [
        None,
        {
            LEVEL: "MASTER",
            "jurisdiction-admin-l2": "FI1B",
            "jurisdiction-context-id": "ctx-1",
        },
    ]
