"""The OpenAPI paths and schemas of the message log and usage overview (``operations_views``).

Kept beside ``openapi.py`` and merged into its document, so the views and their description
change together.
"""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


_ERRORS = {
    "400": {"description": "Malformed request (SP-605)", **_json("Error")},
    "401": {"description": "Not authenticated (SP-601)", **_json("Error")},
    "403": {"description": "The role does not allow it (SP-602)", **_json("Error")},
}
_NOT_FOUND = {"404": {"description": "No such message (SP-611)", **_json("Error")}}
_MESSAGE_PARAMETERS = [
    {
        "name": "source",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "call, oots, outbox",
    },
    {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
]


def operations_paths() -> dict[str, Any]:
    return {
        "/api/messages": {
            "get": {
                "operationId": "listMessages",
                "summary": "The message log: calls and outward messages, newest first, one page",
                "tags": ["operations"],
                "parameters": [
                    _query("since", "YYYY-MM-DD or ISO timestamp (inclusive)"),
                    _query("until", "YYYY-MM-DD (that whole day) or ISO timestamp (exclusive)"),
                    _query("authority_cvr", "only this authority (operator)"),
                    _query("service", "sf2250, sf1600, oots, admin"),
                    _query("operation", "the operation name"),
                    _query("outcome", "ok, fault, pending"),
                    _query("error_code", "SP-xxx"),
                    _query("message_id", "a MessageID (the caller's or the AS4 one)"),
                    _query("conversation_id", "an OOTS conversation id"),
                    _query("subject", "a CPR or CVR number, in full"),
                    _query("source", "call, oots, outbox"),
                    _query("limit", "1-200, default 50"),
                    _query("after", "the next cursor of the previous page"),
                ],
                "responses": {"200": {"description": "OK", **_json("MessagePage")}, **_ERRORS},
            }
        },
        "/api/messages/{source}/{key}": {
            "get": {
                "operationId": "getMessage",
                "summary": "One message: its record, outward status and related messages",
                "tags": ["operations"],
                "parameters": _MESSAGE_PARAMETERS,
                "responses": {
                    "200": {"description": "OK", **_json("MessageDetail")},
                    **_ERRORS,
                    **_NOT_FOUND,
                },
            }
        },
        "/api/messages/{source}/{key}/resend": {
            "post": {
                "operationId": "resendMessage",
                "summary": "Send a failed OOTS request or an undelivered outbox row again "
                "(operator; audited)",
                "tags": ["operations"],
                "parameters": _MESSAGE_PARAMETERS,
                "responses": {
                    "200": {"description": "Resent (or refused again)", **_json("Resent")},
                    **_ERRORS,
                    **_NOT_FOUND,
                    "409": {"description": "It cannot be resent (SP-612)", **_json("Error")},
                },
            }
        },
        "/api/usage": {
            "get": {
                "operationId": "usage",
                "summary": "Calls per day, authority and service with error rate and p95 latency",
                "tags": ["operations"],
                "parameters": [
                    _query("days", "1-31, default 30"),
                    _query("authority_cvr", "only this authority (operator)"),
                ],
                "responses": {"200": {"description": "OK", **_json("Usage")}, **_ERRORS},
            }
        },
    }


def operations_schemas() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    message = {
        "type": "object",
        "properties": {
            "ref": {"type": "string"},
            "source": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "service": {"type": "string"},
            "operation": nullable_string,
            "outcome": {"enum": ["ok", "fault", "pending"]},
            "state": {"type": "string"},
            "authority_cvr": nullable_string,
            "error_code": nullable_string,
            "message_id": nullable_string,
            "conversation_id": nullable_string,
            "subject": nullable_string,
            "latency_ms": {"type": ["number", "null"]},
            "detail": nullable_string,
        },
    }
    detail = {
        "type": "object",
        "properties": {
            "message": {"$ref": _REF + "Message"},
            "resendable": {"type": "boolean"},
            "sections": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "rows": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
    return {
        "Message": message,
        "MessagePage": {
            "type": "object",
            "properties": {
                "messages": {"type": "array", "items": {"$ref": _REF + "Message"}},
                "next": nullable_string,
                "sources": {"type": "array", "items": {"type": "string"}},
            },
        },
        "MessageDetail": detail,
        "Resent": {
            "allOf": [
                {"$ref": _REF + "MessageDetail"},
                {
                    "type": "object",
                    "properties": {"sent": {"type": "boolean"}, "text": {"type": "string"}},
                },
            ]
        },
        "Usage": {
            "type": "object",
            "properties": {
                "from": {"type": "string", "format": "date"},
                "to": {"type": "string", "format": "date"},
                "rows": {"type": "array", "items": {"type": "object"}},
                "days": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
