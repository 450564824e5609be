"""Nova's `/servers/{id}/metadata[/{key}]`: a server's metadata is its Kumo labels.

Kumo holds at most 64 labels per instance, keys of 1-63 characters and values of up to 63
(more is the API's 400). Each change reads the server, changes its labels and writes them
back with UpdateInstance under the etag it read; when another change came in between (the
API answers ABORTED), it reads and applies again (etag_retry), so no concurrent change is
lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import field_mask_pb2
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.nova.base import NovaBase

Labels = dict[str, str]


def _strings(value: Any, key: str) -> Labels:
    """The body's `key` object, every key and value a string; 400 otherwise."""
    if not isinstance(value, dict) or key not in value:
        raise invalid(f"the body needs a '{key}' object")
    items = value[key]
    if not isinstance(items, dict):
        raise invalid(f"Invalid input for field/attribute {key}: not an object.")
    for name, text in items.items():
        if not isinstance(text, str):
            raise invalid(f"Invalid input for field/attribute {key}. Value of {name!r}: {text!r}.")
    return dict(items)


def _missing() -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.NOT_FOUND, "Metadata item was not found")


class ServerMetadata(NovaBase):
    """GET/POST/PUT `/metadata`, GET/PUT/DELETE `/metadata/{key}`."""

    async def _write(
        self, scope: Scope, request: Request, change: Callable[[Labels], Labels]
    ) -> Labels:
        """Reads the server, applies `change` to its labels and writes them under the etag
        read; the labels after. ABORTED if the server changed in between."""
        server = await self.server_of(scope, request)
        message = cpb.Instance(
            name=server.name, labels=change(dict(server.labels)), etag=server.etag
        )
        updated = await self.call(
            self.compute.UpdateInstance,
            capi.UpdateInstanceRequest(
                instance=message, update_mask=field_mask_pb2.FieldMask(paths=["labels"])
            ),
            scope,
        )
        return dict(updated.labels)

    async def _change(
        self, scope: Scope, request: Request, change: Callable[[Labels], Labels]
    ) -> Labels:
        """`_write`, again while another change came in between (ABORTED; see
        etag_retry). Raises what `change` raises, and RpcFailure as UpdateInstance does."""
        return await until_written(lambda: self._write(scope, request, change), aborted)

    async def list(self, request: Request) -> Response:
        """GET /metadata."""
        scope, version = await self.begin(request)
        server = await self.server_of(scope, request)
        return self.reply(version, {"metadata": dict(server.labels)})

    async def merge(self, request: Request) -> Response:
        """POST /metadata: sets the given items, keeps the others; all items after."""
        scope, version = await self.begin(request)
        given = _strings(await json_body(request), "metadata")
        labels = await self._change(scope, request, lambda old: {**old, **given})
        return self.reply(version, {"metadata": labels})

    async def replace(self, request: Request) -> Response:
        """PUT /metadata: the given items become all of the server's metadata."""
        scope, version = await self.begin(request)
        given = _strings(await json_body(request), "metadata")
        labels = await self._change(scope, request, lambda _: given)
        return self.reply(version, {"metadata": labels})

    async def show(self, request: Request) -> Response:
        """GET /metadata/{key}; 404 if the server has no such item."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]
        server = await self.server_of(scope, request)
        if key not in server.labels:
            raise _missing()
        return self.reply(version, {"meta": {key: server.labels[key]}})

    async def set(self, request: Request) -> Response:
        """PUT /metadata/{key} with `{"meta": {key: value}}`: that one item."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]
        given = _strings(await json_body(request), "meta")
        if len(given) > 1:
            raise invalid("Request body contains too many items")
        if list(given) != [key]:
            raise invalid("Request body and URI mismatch")
        labels = await self._change(scope, request, lambda old: {**old, **given})
        return self.reply(version, {"meta": {key: labels[key]}})

    async def delete(self, request: Request) -> Response:
        """DELETE /metadata/{key}: 204; 404 if the server has no such item."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]

        def without(old: Labels) -> Labels:
            if key not in old:
                raise _missing()
            return {k: v for k, v in old.items() if k != key}

        await self._change(scope, request, without)
        return self.reply(version, status=204)
