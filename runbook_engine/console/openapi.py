"""The OpenAPI 3.1 document of the console's API (:mod:`.api`), served at ``/openapi.json``.

Written by hand, here only: when a route of :mod:`.api` changes, this changes with it
(``tests/test_console_api.py`` runs schemathesis against the served document).
"""

from __future__ import annotations

from typing import Any

from runbook_engine import __version__

_ERROR = {"$ref": "#/components/schemas/Error"}
_NULL_STR = {"type": ["string", "null"]}


def _answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    words = {
        400: "Bad input",
        401: "No or a bad bearer token",
        403: "Not allowed (roles, CSRF, separation of duties)",
        404: "No such run",
        409: "The run or step does not allow this now",
    }
    return {str(c): _answer(_ERROR, words[c]) for c in codes}


_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_STEP_ID = {"name": "step_id", "in": "path", "required": True, "schema": {"type": "string"}}
_NOTE = {"type": ["string", "null"], "maxLength": 4000}
_FILES = {
    "type": "array",
    "maxItems": 10,
    "items": {"type": "string", "format": "binary"},
    "description": "attachments kept as evidence (bounded in size and type: the "
    "console's upload settings)",
}


def _act_body(decision: bool) -> dict[str, Any]:
    """JSON, or a form with the same fields as text and files as ``attachments``."""
    fields: dict[str, Any] = {"note": _NOTE}
    form: dict[str, Any] = {"note": {"type": "string", "maxLength": 4000}}
    if decision:
        fields |= {"host": _NULL_STR, "in_advance": {"type": ["boolean", "null"]}}
        form |= {"host": {"type": "string"}, "in_advance": {"enum": ["true", "false"]}}
    return {
        "required": False,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": fields, "additionalProperties": False}
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {**form, "attachments": _FILES},
                    "additionalProperties": False,
                }
            },
        },
    }


def _decision(what: str, answer: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": what,
            "operationId": what.split()[0].lower(),
            "parameters": [_RUN_ID, _STEP_ID],
            "requestBody": _act_body(answer == "Decided"),
            "responses": {
                "200": _answer({"$ref": f"#/components/schemas/{answer}"}),
                **_errors(400, 401, 403, 404, 409),
            },
        }
    }


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a new dict each call)."""
    filters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "schema": {"type": "string"},
            "description": text,
        }
        for name, text in (
            ("status", "status or outcome word (paused, running, succeeded, ...)"),
            ("runbook", "runbook id"),
            ("environment", "environment name"),
            ("operator", "operator (case-insensitive)"),
            ("date", "UTC day the run started (YYYY-MM-DD)"),
        )
    ]
    run = {
        "type": "object",
        "required": ["run_id", "runbook_id", "status", "operator", "created_at", "url"],
        "properties": {
            "run_id": {"type": "string"},
            "runbook_id": {"type": "string"},
            "environment": _NULL_STR,
            "status": {"type": "string"},
            "outcome": _NULL_STR,
            "operator": {"type": "string"},
            "change_id": _NULL_STR,
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "url": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "runbook console API",
            "version": __version__,
            "description": "Runs, gates, approvals and evidence of one runbook-engine store. "
            "Authenticate with `Authorization: Bearer TOKEN` (`runbook users add|token`); "
            "the console's own pages use their session cookie, and then every POST needs "
            "the session's CSRF token in the `X-CSRF-Token` header (403 without it).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": {
            "/api/v1/me": {
                "get": {
                    "summary": "Who the token belongs to",
                    "operationId": "me",
                    "responses": {
                        "200": _answer({"$ref": "#/components/schemas/Me"}),
                        **_errors(401),
                    },
                }
            },
            "/api/v1/runs": {
                "get": {
                    "summary": "Runs, newest first, filtered",
                    "operationId": "listRuns",
                    "parameters": filters,
                    "responses": {
                        "200": _answer(
                            {
                                "type": "object",
                                "required": ["runs"],
                                "properties": {
                                    "runs": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Run"},
                                    }
                                },
                            }
                        ),
                        **_errors(401),
                    },
                },
                "post": {
                    "summary": "Start a run (the caller is its authenticated operator)",
                    "operationId": "startRun",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/StartRun"}
                            }
                        },
                    },
                    "responses": {
                        "202": _answer({"$ref": "#/components/schemas/Started"}, "Started"),
                        **_errors(400, 401, 403),
                    },
                },
            },
            "/api/v1/runs/{run_id}": {
                "get": {
                    "summary": "A run: its steps, the gates it waits at, its approvals",
                    "operationId": "getRun",
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": _answer({"$ref": "#/components/schemas/RunDetail"}),
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/runs/{run_id}/evidence": {
                "get": {
                    "summary": "The evidence verification verdict",
                    "operationId": "verifyEvidence",
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": _answer({"$ref": "#/components/schemas/Verdict"}),
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/runs/{run_id}/bundle": {
                "get": {
                    "summary": "The evidence bundle (zip)",
                    "operationId": "getBundle",
                    "parameters": [_RUN_ID],
                    "responses": {
                        "200": {
                            "description": "The bundle",
                            "content": {"application/zip": {"schema": {"type": "string"}}},
                        },
                        **_errors(401, 404),
                    },
                }
            },
            "/api/v1/runs/{run_id}/steps/{step_id}/confirm": _decision("Confirm a gate", "Decided"),
            "/api/v1/runs/{run_id}/steps/{step_id}/skip": _decision(
                "Skip a gate (the note is the reason)", "Decided"
            ),
            "/api/v1/runs/{run_id}/steps/{step_id}/abort": _decision("Abort at a gate", "Decided"),
            "/api/v1/runs/{run_id}/steps/{step_id}/rerun": _decision(
                "Rerun a step interrupted while running", "Decided"
            ),
            "/api/v1/runs/{run_id}/steps/{step_id}/approve": _decision(
                "Approve an approval step", "Voted"
            ),
            "/api/v1/runs/{run_id}/steps/{step_id}/reject": _decision(
                "Reject an approval step", "Voted"
            ),
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "runbook_console",
                    "description": "The console's signed-in session; a POST also needs "
                    "the X-CSRF-Token header",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Me": {
                    "type": "object",
                    "required": ["name", "roles", "method"],
                    "properties": {
                        "name": {"type": "string"},
                        "roles": {"type": "array", "items": {"type": "string"}},
                        "method": {"type": "string"},
                    },
                },
                "Run": run,
                "RunDetail": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Run"},
                        {
                            "type": "object",
                            "required": ["steps", "gates", "approvals", "finished"],
                            "properties": {
                                "word": {"type": "string"},
                                "finished": {"type": "boolean"},
                                "steps": {"type": "array", "items": {"type": "object"}},
                                "gates": {"type": "array", "items": {"type": "object"}},
                                "approvals": {"type": "array", "items": {"type": "object"}},
                                "outputs": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["name", "text"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "text": {"type": "string"},
                                        },
                                    },
                                },
                                "events": {"type": "array", "items": {"type": "object"}},
                            },
                        },
                    ]
                },
                "StartRun": {
                    "type": "object",
                    "required": ["runbook"],
                    "additionalProperties": False,
                    "properties": {
                        "runbook": {"type": "string", "description": "path in the library"},
                        "environment": _NULL_STR,
                        "values": {
                            "type": ["object", "null"],
                            "additionalProperties": {"type": "string"},
                        },
                        "note": {"type": ["string", "null"], "maxLength": 4000},
                        "change_id": _NULL_STR,
                    },
                },
                "Started": {
                    "type": "object",
                    "required": ["run_id", "url"],
                    "properties": {
                        "run_id": {"type": "string"},
                        "url": {"type": "string"},
                        "launcher": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
                "Decided": {
                    "type": "object",
                    "required": [
                        "run_id",
                        "step",
                        "hosts",
                        "decision",
                        "by",
                        "auth_method",
                        "message",
                    ],
                    "properties": {
                        "run_id": {"type": "string"},
                        "step": {"type": "string"},
                        "hosts": {"type": "array", "items": {"type": "string"}},
                        "decision": {"type": "string"},
                        "by": {"type": "string"},
                        "auth_method": {"type": "string"},
                        "in_advance": {"type": "boolean"},
                        "attachments": {"type": "array", "items": {"type": "string"}},
                        "message": {"type": "string"},
                    },
                },
                "Voted": {
                    "type": "object",
                    "required": [
                        "run_id",
                        "step",
                        "by",
                        "decision",
                        "approvals",
                        "required",
                        "message",
                    ],
                    "properties": {
                        "run_id": {"type": "string"},
                        "step": {"type": "string"},
                        "by": {"type": "string"},
                        "decision": {"type": "string"},
                        "approvals": {"type": "integer"},
                        "required": {"type": "integer"},
                        "auth_method": {"type": "string"},
                        "attachments": {"type": "array", "items": {"type": "string"}},
                        "message": {"type": "string"},
                    },
                },
                "Verdict": {
                    "type": "object",
                    "required": ["run_id", "verdict", "text"],
                    "properties": {
                        "run_id": {"type": "string"},
                        "verdict": {"type": "string"},
                        "text": {"type": "string"},
                    },
                },
            },
        },
    }
