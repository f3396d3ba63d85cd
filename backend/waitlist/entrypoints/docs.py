"""How the staff API describes itself at /docs/openapi.json: request and response models, paging
parameters, tags, examples and the problem+json errors, written the same way on every route.

sanic-ext writes OpenAPI 3.0.3 but reads pydantic models field by field and loses most of their
constraints, so each model goes in whole as a component, from pydantic's own JSON Schema
translated to 3.0's dialect (`nullable` instead of a `null` type, `example` instead of `examples`).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

from pydantic import BaseModel
from sanic_ext import openapi
from sanic_ext.extensions.openapi.builders import SpecificationBuilder
from sanic_ext.extensions.openapi.definitions import Reference
from sanic_ext.extensions.openapi.types import Integer, String

from waitlist.entrypoints.http import MAX_OFFSET, MAX_PAGE, MAX_ROW_ID, PROBLEM_JSON
from waitlist.entrypoints.responses import Problem, page_of

F = TypeVar("F", bound=Callable[..., Any])

TAGS = {
    "providers": "Who sees patients: a freed slot is offered for its provider.",
    "patients": "Patients, their numbers and their page (entries, offers, texts).",
    "waitlist": "Who wants an earlier appointment, and what they accept.",
    "slots": "Cancellations entered by the front desk, their offers and why they fill or not.",
    "front desk": "The board, the follow-up queues and the fill figures.",
    "audit": "The audit trail and whether texts are leaving.",
    "staff accounts": "Users of the console and their API tokens (admins).",
}
for _name, _description in TAGS.items():
    SpecificationBuilder().tag(_name, _description)

# A day in the clinic's calendar; years 2000 to 2999 keep date arithmetic away from its limits.
CLINIC_DAY = String(format="date", pattern=r"^2[0-9]{3}-[0-9]{2}-[0-9]{2}$")

_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SUBSCHEMAS = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
_NULL = {"type": "null"}


def openapi30(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic (JSON Schema 2020-12) schema in OpenAPI 3.0's dialect."""
    out = dict(schema)
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: openapi30(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMAS:
        if isinstance(out.get(key), dict):
            out[key] = openapi30(out[key])
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [openapi30(sub) for sub in out[key]]
    options = out.get("anyOf")
    if isinstance(options, list) and _NULL in options:
        rest = [sub for sub in options if sub != _NULL]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out.update(rest[0])
        else:
            # 3.0 ignores whatever sits beside a $ref, so a nullable reference goes in allOf
            out["allOf" if len(rest) == 1 else "anyOf"] = rest
        out["nullable"] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("examples"), list) and out["examples"]:
        out["example"] = out.pop("examples")[0]
    return out


def component(model: type[BaseModel]) -> Reference:
    """A reference to `model` under #/components/schemas, added there (with the models it uses)
    the first time."""
    builder = SpecificationBuilder()
    name = model.__name__
    if not builder.has_component("schemas", name):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for sub_name, sub in schema.pop("$defs", {}).items():
            builder.add_component("schemas", sub_name, openapi30(sub))
        builder.add_component("schemas", name, openapi30(schema))
    return Reference(f"#/components/schemas/{name}")


def _chain(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(handler: F) -> F:
        for decorator in reversed(decorators):
            handler = decorator(handler)
        return handler

    return apply


def _problems(statuses: tuple[int, ...]) -> list[Callable[[F], F]]:
    problem = {PROBLEM_JSON: component(Problem)}
    documented = [
        openapi.response(status, problem, HTTPStatus(status).phrase)
        for status in (401, *statuses)  # every staff route needs a login or a token
    ]
    # any other error (413 too big, 500 ...) has the same shape
    return [*documented, openapi.response("default", problem, "An error (RFC 9457 problem)")]


def operation(
    tag: str,
    returns: type[BaseModel] | None = None,
    *,
    status: int = 200,
    body: type[BaseModel] | None = None,
    body_required: bool = True,
    ids: tuple[str, ...] = (),
    errors: tuple[int, ...] = (),
    example: dict[str, Any] | None = None,
) -> Callable[[F], F]:
    """One staff operation: its tag, bearer security, path ids, body, answer and errors."""
    decorators: list[Callable[[F], F]] = [openapi.tag(tag), openapi.secured("bearer")]
    for name in ids:
        decorators.append(
            openapi.parameter(name, Integer(minimum=1, maximum=MAX_ROW_ID), "path", required=True)
        )
    if body is not None:
        media: dict[str, Any] = {"schema": component(body)}
        if example is not None:
            media["example"] = example
        decorators.append(openapi.body({"application/json": media}, required=body_required))
        errors = (*errors, 400, 422)  # not JSON, or a field that breaks its schema
    if ids:
        errors = (*errors, 404)
    if returns is not None:
        content = {"application/json": component(returns)}
        decorators.append(openapi.response(status, content, HTTPStatus(status).phrase))
    decorators += _problems(tuple(sorted(set(errors))))
    return _chain(*decorators)


def paged(tag: str, item: type[BaseModel], default_limit: int = 100) -> Callable[[F], F]:
    """A list operation: `limit` and `offset` in, a `{items, total, next}` page out."""
    limit = Integer(minimum=1, maximum=MAX_PAGE, default=default_limit)
    offset = Integer(minimum=0, maximum=MAX_OFFSET, default=0)
    return _chain(
        openapi.parameter("limit", limit, "query", description="page size"),
        openapi.parameter(
            "offset", offset, "query", description="where the page starts: the last page's `next`"
        ),
        operation(tag, page_of(item), errors=(400,)),
    )
