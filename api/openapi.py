"""The OpenAPI document, completed with the error answers every route can give (found by schemathesis).

FastAPI documents only 200 and its own 422. Routes also answer 400 (a bad parameter or an unparsable
body), 401/403 (key), 404 (an unknown id in the path), 409, 413 (body too large), 429 and 503 (Redis
or Kafka down), all as `{"detail": "<what is wrong>"}`; and citystream's own 422s carry a string detail
where FastAPI's carry a list. A request the HTTP server itself cannot parse (a request line longer than it
accepts) gets uvicorn's plain-text 400 before any route sees it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorBody",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong, and what to do about it"},
        "unavailable": {"type": "array", "items": {"type": "string"}, "description": "servers that are down"},
    },
}
PUBLIC = {"/health", "/metrics", "/"}
ERROR_TEXT = {
    400: "a parameter or the body is malformed; `detail` says which",
    401: "no API key, or an unknown or revoked one",
    403: "the key's role may not use this route",
    404: "no such resource",
    409: "the action contradicts the current state",
    413: "the body is larger than allowed",
    429: "over the key's rate; see Retry-After",
    503: "Redis (or Kafka) is unavailable; `unavailable` names it",
}


def install_openapi(app: FastAPI) -> None:
    """Make app.openapi() document every error answer the routes give."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            complete_errors(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete_errors(doc: dict[str, Any]) -> None:
    """Add the error answers each operation can give, and let a 422's detail be a string too."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ERROR_SCHEMA
    validation = schemas.get("HTTPValidationError")
    if validation is not None:
        detail = validation["properties"]["detail"]
        validation["properties"]["detail"] = {"anyOf": [detail, {"type": "string"}], "title": "Detail"}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            codes = {400, 413, 503}
            if path not in PUBLIC:
                codes |= {401, 403}
            if "{" in path:
                codes.add(404)
            if method in ("post", "delete"):
                codes.add(409)
            if path.startswith("/ingest"):
                codes.add(429)
            responses = operation.setdefault("responses", {})
            for code in sorted(codes):
                entry = responses.setdefault(str(code), {"description": ERROR_TEXT[code]})
                content = entry.setdefault(
                    "content", {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                )
                if code == 400:  # uvicorn's own answer to a request it cannot parse (e.g. a request line too long)
                    content.setdefault("text/plain", {"schema": {"type": "string"}})
            if method == "post" and "422" not in responses:
                responses["422"] = {
                    "description": "the body is invalid",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
                }
