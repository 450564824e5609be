"""Native REST: routes derived at start-up from the contracts' `google.api.http` bindings,
JSON through protobuf's json_format, errors as `google.rpc.Status`, and the OpenAPI
document the bindings imply."""
