"""The OpenAPI 3 document implied by the HTTP bindings (served at `/openapi.json`).

Paths spell the variables' patterns out (see `openapi_path`), so each resource has its own
paths. Schemas are the request and response messages in protobuf's JSON
mapping (lowerCamelCase, int64 as string, enums as their names, well-known types as JSON).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from kumo.gateway.native.bindings import Binding

_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}}},
}
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64"},
}


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return _WELL_KNOWN[message.full_name]
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder against recursion
            properties = {field.json_name: self.field(field) for field in message.fields}
            self.components[message.full_name] = {"type": "object", "properties": properties}
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self.single(message.fields[1])}
        schema = self.single(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def single(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
        return dict(_SCALARS.get(field.type, {"type": "string"}))


def openapi_path(binding: Binding) -> tuple[str, list[dict[str, Any]]]:
    """The OpenAPI path of a binding and its path parameters.

    A variable's pattern is spelled out: each `*` becomes a parameter named after the
    collection before it (`{name=projects/*/keyPairs/*}` -> `projects/{projects_id}/keyPairs/
    {keyPairs_id}`), so that paths of different resources never collide; a `**` becomes one
    parameter for the rest of the name.
    """
    path = binding.template
    parameters: list[dict[str, Any]] = []
    for variable in binding.variables:
        whole = f"{{{variable.field}={variable.pattern}}}"
        if whole not in path:
            whole = f"{{{variable.field}}}"
        segments = []
        previous = variable.field.replace(".", "_")
        for segment in variable.pattern.split("/"):
            if segment in ("*", "**"):
                name = f"{previous}_id" if segment == "*" else f"{previous}_path"
                segments.append(f"{{{name}}}")
                schema: dict[str, Any] = {"type": "string"}
                if segment == "**":
                    schema["pattern"] = "^.+$"
                parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
            else:
                segments.append(segment)
                previous = segment
        path = path.replace(whole, "/".join(segments))
    return path, parameters


def document(bindings: Iterable[Binding], title: str = "Kumo") -> dict[str, Any]:
    """The OpenAPI 3.0 document of the bindings."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for binding in bindings:
        path, parameters = openapi_path(binding)
        method = binding.method
        operation: dict[str, Any] = {
            "operationId": f"{method.containing_service.name}_{method.name}",
            "tags": [method.containing_service.name],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": schemas.ref(method.output_type)}},
                },
                "default": {
                    "description": "An error (google.rpc.Status)",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/google.rpc.Status"}
                        }
                    },
                },
            },
        }
        if binding.body:
            target: Any = method.input_type
            if binding.body != "*":
                target = method.input_type.fields_by_name[binding.body]
            schema = schemas.ref(target) if binding.body == "*" else schemas.field(target)
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema}},
            }
        paths.setdefault(path, {})[binding.http_method.lower()] = operation
    schemas.components["google.rpc.Status"] = {
        "type": "object",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{title} native REST API", "version": "v1"},
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
