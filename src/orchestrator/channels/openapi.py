"""The problem responses every operation documents, so the OpenAPI says what the API really does.

Each route declares its error statuses in one line (``responses=problems(401, 404, 409)``); the
bodies are RFC 9457 problem details, as rendered by ``app.py``. The schemathesis fuzzer
(``tests/fuzz``) fails on any status or body the schema does not document.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

PROBLEM_JSON = "application/problem+json"


class FieldError(Struct):
    field: str | None
    message: str | None


class Problem(Struct, omit_defaults=True):
    """RFC 9457 problem details. Other members may follow (``alternatives`` of a taken slot,
    ``status_now`` of a refused transition, ``retry_after_seconds``…)."""

    type: str
    title: str
    status: int
    detail: str
    code: str | None = None
    errors: list[FieldError] | None = None
    alternatives: list[dict[str, Any]] | None = None


DESCRIPTIONS = {
    400: "Malformed request: not JSON, a wrong type, a missing or unknown field",
    401: "No credentials, or an invalid or expired token",
    403: "The caller's role may not do this",
    404: "No such object, or one the caller may not see",
    409: "Conflicts with the current state (a taken slot comes with `alternatives`; a concurrent "
    "update with code `retry`)",
    413: "The request body is larger than the limit this operation states",
    422: "Well-formed but unacceptable: `errors` names each field",
    429: "Too many requests from this client: the `Retry-After` header says when to retry",
    503: "Overloaded (code `overloaded`), or a dependency unreachable: the `Retry-After` header says "
    "when to retry",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """Response specs for the given error statuses (400 is always included: any body may be
    malformed; so is 503: any request may meet an overloaded server)."""
    return {status: _spec(status) for status in sorted({400, 503, *statuses})}


def _spec(status: int) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=DESCRIPTIONS[status],
        media_type=PROBLEM_JSON,
        generate_examples=False,
    )


# The usual sets, named by who may call and what the operation does.
PUBLIC = problems(404, 422, 429)  # public booking routes, rate-limited
STAFF_READ = problems(401, 403, 404)
STAFF_WRITE = problems(401, 403, 404, 409, 422)
NOTHING_TO_CALL = {
    204: ResponseSpec(data_container=None, description="Nobody waiting fits this counsellor now")
}
