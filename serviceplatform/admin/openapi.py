"""The admin API's OpenAPI 3.1 document (served at ``/admin/api/openapi.json``).

Written as data next to the routes it describes; ``tests/unit/test_admin_api.py`` checks that
every route of ``admin/app.py`` is in it and that it is a valid OpenAPI 3.1 document.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from serviceplatform.admin.openapi_operations import operations_paths, operations_schemas

_REF = "#/components/schemas/"


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": _REF + schema}}}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, **_json(schema)}


_ERRORS = {
    "400": {"description": "Malformed request (SP-605)", **_json("Error")},
    "401": {"description": "Not authenticated (SP-601)", **_json("Error")},
    "403": {"description": "The role does not allow it (SP-602)", **_json("Error")},
}
_SYSTEM_ID = {
    "name": "system_uuid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
_SYSTEM_ERRORS = {
    **_ERRORS,
    "404": {"description": "No such consumer system (SP-606)", **_json("Error")},
}
_AGREEMENT_ID = {
    "name": "agreement_uuid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}


def _transition(action: str, summary: str, reason_required: bool) -> dict[str, Any]:
    body_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 1000}},
    }
    if reason_required:
        body_schema["required"] = ["reason"]
    return {
        "post": {
            "operationId": f"{action}Agreement",
            "summary": summary,
            "tags": ["agreements"],
            "parameters": [_AGREEMENT_ID],
            "requestBody": {
                "required": reason_required,
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": {
                "200": _ok("Agreement"),
                **_ERRORS,
                "404": {"description": "No such agreement (SP-603)", **_json("Error")},
                "409": {"description": "Not allowed from this status (SP-604)", **_json("Error")},
            },
        }
    }


def _system_state(action: str, summary: str, reason_required: bool) -> dict[str, Any]:
    body_schema: dict[str, Any] = {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 1000}},
    }
    if reason_required:
        body_schema["required"] = ["reason"]
    return {
        "post": {
            "operationId": f"{action}ConsumerSystem",
            "summary": summary + " (operator; supplier for its own)",
            "tags": ["consumer systems"],
            "parameters": [_SYSTEM_ID],
            "requestBody": {
                "required": reason_required,
                "content": {"application/json": {"schema": body_schema}},
            },
            "responses": {"200": _ok("ConsumerSystem"), **_SYSTEM_ERRORS},
        }
    }


def _get(operation_id: str, summary: str, schema: str, tag: str, **extra: Any) -> dict[str, Any]:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": [tag],
            "responses": {"200": _ok(schema), **_ERRORS},
            **extra,
        }
    }


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }


@cache
def openapi_document() -> dict[str, Any]:
    nullable_string = {"type": ["string", "null"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Serviceplatform administration API",
            "version": "1.0.0",
            "description": "Consumer systems, service agreements, their post-configuration, "
            "certificates, "
            "nightly runs and the audit trail. See docs/admin-api.md.",
        },
        "servers": [{"url": "/admin"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/me": _get("me", "Who am I", "Principal", "session"),
            "/api/agreements": {
                **_get(
                    "listAgreements",
                    "Agreements the caller may see",
                    "AgreementList",
                    "agreements",
                    parameters=[
                        _query("status", "requested, approved, rejected, suspended, revoked"),
                        _query("service", "service key, e.g. sf2250"),
                        _query("authority_cvr", "8-digit CVR number"),
                    ],
                ),
                "post": {
                    "operationId": "requestAgreement",
                    "summary": "Request a service agreement (supplier, operator)",
                    "tags": ["agreements"],
                    "requestBody": {"required": True, **_json("AgreementRequest")},
                    "responses": {"201": _ok("Agreement", "Requested"), **_ERRORS},
                },
            },
            "/api/agreements/{agreement_uuid}": {
                "get": {
                    "operationId": "getAgreement",
                    "summary": "One agreement with its history",
                    "tags": ["agreements"],
                    "parameters": [_AGREEMENT_ID],
                    "responses": {
                        "200": _ok("AgreementWithHistory"),
                        **_ERRORS,
                        "404": {"description": "No such agreement (SP-603)", **_json("Error")},
                    },
                }
            },
            "/api/agreements/{agreement_uuid}/approve": _transition(
                "approve", "Approve a requested agreement", False
            ),
            "/api/agreements/{agreement_uuid}/reject": _transition(
                "reject", "Reject a requested agreement", True
            ),
            "/api/agreements/{agreement_uuid}/suspend": _transition(
                "suspend", "Suspend an approved agreement", True
            ),
            "/api/agreements/{agreement_uuid}/resume": _transition(
                "resume", "Resume a suspended agreement", False
            ),
            "/api/agreements/{agreement_uuid}/revoke": _transition(
                "revoke", "Revoke an agreement for good", True
            ),
            "/api/agreements/{agreement_uuid}/configuration": {
                "put": {
                    "operationId": "configureAgreement",
                    "summary": "Post-configuration: SysIDs, certificate, end date (operator)",
                    "tags": ["agreements"],
                    "parameters": [_AGREEMENT_ID],
                    "requestBody": {"required": True, **_json("Configuration")},
                    "responses": {
                        "200": _ok("Agreement"),
                        **_ERRORS,
                        "404": {"description": "No such agreement (SP-603)", **_json("Error")},
                    },
                }
            },
            "/api/agreements/{agreement_uuid}/print-route": {
                **_get(
                    "getPrintRoute",
                    "How the agreement's EP_SP1/EP_SP4 calls go out (sf1600 or sf1601)",
                    "PrintRoute",
                    "agreements",
                    parameters=[_AGREEMENT_ID],
                ),
                "put": {
                    "operationId": "setPrintRoute",
                    "summary": "Choose the print route and so its credential (operator)",
                    "tags": ["agreements"],
                    "parameters": [_AGREEMENT_ID],
                    "requestBody": {"required": True, **_json("PrintRouteChange")},
                    "responses": {
                        "200": _ok("PrintRoute"),
                        **_ERRORS,
                        "404": {"description": "No such agreement (SP-603)", **_json("Error")},
                    },
                },
            },
            "/api/consumer-systems": {
                **_get(
                    "listConsumerSystems",
                    "Consumer systems (a supplier sees its own)",
                    "ConsumerSystemList",
                    "consumer systems",
                ),
                "post": {
                    "operationId": "registerConsumerSystem",
                    "summary": "Register a consumer system with its certificate "
                    "(operator; supplier for itself)",
                    "tags": ["consumer systems"],
                    "requestBody": {"required": True, **_json("ConsumerSystemRegistration")},
                    "responses": {
                        "201": _ok("ConsumerSystem", "Registered"),
                        **_ERRORS,
                        "409": {
                            "description": "The certificate is registered already (SP-607)",
                            **_json("Error"),
                        },
                    },
                },
            },
            "/api/consumer-systems/{system_uuid}": {
                "get": {
                    "operationId": "getConsumerSystem",
                    "summary": "One consumer system with its certificates and history",
                    "tags": ["consumer systems"],
                    "parameters": [_SYSTEM_ID],
                    "responses": {"200": _ok("ConsumerSystemWithHistory"), **_SYSTEM_ERRORS},
                }
            },
            "/api/consumer-systems/{system_uuid}/certificates": {
                "post": {
                    "operationId": "addConsumerSystemCertificate",
                    "summary": "Rotate: add a certificate; the current ones are retired after "
                    "overlap_days (or kept, with keep_current)",
                    "tags": ["consumer systems"],
                    "parameters": [_SYSTEM_ID],
                    "requestBody": {"required": True, **_json("CertificateRotation")},
                    "responses": {
                        "200": _ok("ConsumerSystem"),
                        **_SYSTEM_ERRORS,
                        "409": {
                            "description": "The certificate is registered already (SP-607)",
                            **_json("Error"),
                        },
                    },
                }
            },
            "/api/consumer-systems/{system_uuid}/deactivate": _system_state(
                "deactivate", "Refuse every call of the system (SP-218)", True
            ),
            "/api/consumer-systems/{system_uuid}/activate": _system_state(
                "activate", "Let a deactivated system call again", False
            ),
            "/api/certificates": _get(
                "listCertificates",
                "Outward certificates (operator)",
                "CertificateList",
                "operations",
            ),
            "/api/subscriptions/runs": _get(
                "listNightlyRuns",
                "The last nightly subscription-list runs",
                "NightlyRuns",
                "operations",
                parameters=[_query("limit", "runs per authority (1-1000)")],
            ),
            "/api/audit": _get(
                "listAudit",
                "Recent audit records, newest first (CPR numbers masked)",
                "AuditRecords",
                "operations",
                parameters=[
                    _query("limit", "1-1000, default 50"),
                    _query("authority_cvr", "only this authority (operator)"),
                ],
            ),
            **operations_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "text"],
                            "properties": {"code": {"type": "string"}, "text": {"type": "string"}},
                        }
                    },
                },
                "Principal": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "role": {"enum": ["operator", "authority_admin", "supplier"]},
                        "authority_cvr": nullable_string,
                        "supplier": nullable_string,
                        "supplier_cvr": nullable_string,
                    },
                },
                "Agreement": {
                    "type": "object",
                    "properties": {
                        "uuid": {"type": "string", "format": "uuid"},
                        "authority_cvr": {"type": "string", "pattern": "^[0-9]{8}$"},
                        "service": {"type": "string"},
                        "consumer_system": {"type": "string", "format": "uuid"},
                        "consumer_system_name": {"type": "string"},
                        "supplier": {"type": "string"},
                        "status": {
                            "enum": ["requested", "approved", "rejected", "suspended", "revoked"]
                        },
                        "register_cert_alias": nullable_string,
                        "valid_from": {"type": ["string", "null"], "format": "date"},
                        "valid_to": {"type": ["string", "null"], "format": "date"},
                        "sysids": {"type": "object", "additionalProperties": {"type": "string"}},
                        "configured": {"type": "boolean"},
                        "routable": {"type": "boolean"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "AgreementWithHistory": {
                    "allOf": [
                        {"$ref": _REF + "Agreement"},
                        {
                            "type": "object",
                            "properties": {
                                "history": {"type": "array", "items": {"$ref": _REF + "Event"}}
                            },
                        },
                    ]
                },
                "Event": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": "string"},
                        "action": {"type": "string"},
                        "from_status": nullable_string,
                        "to_status": {"type": "string"},
                        "reason": nullable_string,
                        "details": {"type": ["object", "null"]},
                    },
                },
                "AgreementList": {
                    "type": "object",
                    "properties": {
                        "agreements": {"type": "array", "items": {"$ref": _REF + "Agreement"}}
                    },
                },
                "AgreementRequest": {
                    "type": "object",
                    "required": ["authority_cvr", "service", "consumer_system"],
                    "properties": {
                        "authority_cvr": {"type": "string", "pattern": "^[0-9]{8}$"},
                        "service": {"type": "string"},
                        "consumer_system": {"type": "string", "format": "uuid"},
                        "supplier": {"type": "string", "description": "operator only"},
                        "reason": {"type": "string"},
                    },
                },
                "Configuration": {
                    "type": "object",
                    "properties": {
                        "sysids": {"type": "object", "additionalProperties": {"type": "string"}},
                        "register_cert_alias": {"type": "string"},
                        "valid_to": {"type": ["string", "null"], "format": "date"},
                        "reason": {"type": "string"},
                    },
                },
                "PrintRoute": {
                    "type": "object",
                    "properties": {
                        "agreement": {"type": "string", "format": "uuid"},
                        "print_route": {"type": "string", "enum": ["sf1600", "sf1601"]},
                        "credential": {"type": "string", "enum": ["certificate", "token"]},
                        "chosen": {"type": "boolean"},
                    },
                },
                "PrintRouteChange": {
                    "type": "object",
                    "required": ["print_route"],
                    "properties": {
                        "print_route": {"type": "string", "enum": ["sf1600", "sf1601"]},
                        "reason": {"type": "string"},
                    },
                },
                "ConsumerSystem": {
                    "type": "object",
                    "properties": {
                        "uuid": {"type": "string", "format": "uuid"},
                        "name": {"type": "string"},
                        "supplier_cvr": {"type": "string", "pattern": "^[0-9]{8}$"},
                        "active": {"type": "boolean"},
                        "deactivated_at": {"type": ["string", "null"], "format": "date-time"},
                        "created_at": {"type": "string", "format": "date-time"},
                        "callable": {"type": "boolean"},
                        "certificates": {
                            "type": "array",
                            "items": {"$ref": _REF + "SystemCertificate"},
                        },
                    },
                },
                "SystemCertificate": {
                    "type": "object",
                    "properties": {
                        "fingerprint_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "subject": {"type": "string"},
                        "issuer": {"type": "string"},
                        "not_before": {"type": "string", "format": "date-time"},
                        "not_after": {"type": "string", "format": "date-time"},
                        "accepted_from": {"type": "string", "format": "date-time"},
                        "accepted_until": {"type": ["string", "null"], "format": "date-time"},
                        "accepted_now": {"type": "boolean"},
                    },
                },
                "ConsumerSystemWithHistory": {
                    "allOf": [
                        {"$ref": _REF + "ConsumerSystem"},
                        {
                            "type": "object",
                            "properties": {
                                "history": {
                                    "type": "array",
                                    "items": {"$ref": _REF + "SystemEvent"},
                                }
                            },
                        },
                    ]
                },
                "SystemEvent": {
                    "type": "object",
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "actor": {"type": "string"},
                        "action": {"type": "string"},
                        "reason": nullable_string,
                        "details": {"type": ["object", "null"]},
                    },
                },
                "ConsumerSystemList": {
                    "type": "object",
                    "properties": {
                        "consumer_systems": {
                            "type": "array",
                            "items": {"$ref": _REF + "ConsumerSystem"},
                        }
                    },
                },
                "ConsumerSystemRegistration": {
                    "type": "object",
                    "required": ["name", "certificate_pem"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 255},
                        "supplier_cvr": {
                            "type": "string",
                            "pattern": "^[0-9]{8}$",
                            "description": "operator only; a supplier registers for itself",
                        },
                        "certificate_pem": {"type": "string", "description": "one PEM certificate"},
                        "uuid": {"type": "string", "format": "uuid"},
                        "reason": {"type": "string"},
                    },
                },
                "CertificateRotation": {
                    "type": "object",
                    "required": ["certificate_pem"],
                    "properties": {
                        "certificate_pem": {"type": "string"},
                        "overlap_days": {"type": "number", "minimum": 0, "maximum": 3650},
                        "keep_current": {"type": "boolean", "default": False},
                        "reason": {"type": "string"},
                    },
                },
                "CertificateList": {
                    "type": "object",
                    "properties": {
                        "certificates": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "alias": {"type": "string"},
                                    "subject": {"type": "string"},
                                    "issuer": {"type": "string"},
                                    "not_after": {"type": ["string", "null"]},
                                    "days_to_expiry": {"type": ["integer", "null"]},
                                    "status": {
                                        "enum": ["ok", "expiring", "expired", "problem", "unknown"]
                                    },
                                    "problem": nullable_string,
                                },
                            },
                        }
                    },
                },
                "NightlyRuns": {
                    "type": "object",
                    "properties": {
                        "runs": {"type": "array", "items": {"type": "object"}},
                        "outbox": {"type": "object"},
                    },
                },
                "AuditRecords": {
                    "type": "object",
                    "properties": {"records": {"type": "array", "items": {"type": "object"}}},
                },
                **operations_schemas(),
            },
        },
    }
