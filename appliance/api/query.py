"""Query strings read through one pydantic model, for the hot routes that skip FastAPI's per-parameter
solving: the model validates the parameters (a bad one is the same 422 as anywhere else) and describes
them in the OpenAPI document, so the contract stays in one place."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

ModelT = TypeVar("ModelT", bound=BaseModel)


def parse(request: Request, model: type[ModelT]) -> ModelT:
    """The request's query parameters as ``model`` (the last value of a repeated one); 422 otherwise."""
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def openapi_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing ``model``'s fields as the route's query parameters."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        entry: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in schema.get("required", ()),
            "schema": {k: v for k, v in prop.items() if k not in ("description", "title")},
        }
        if "description" in prop:
            entry["description"] = prop["description"]
        parameters.append(entry)
    return {"parameters": parameters}
