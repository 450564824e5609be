"""The `/metadata[/{key}]` routes Nova (servers) and Cinder (volumes, snapshots) share,
over a resource's Kumo labels.

Kumo holds at most 64 labels per resource, keys of 1-63 characters and values of up to 63
(more is the API's 400). Each change reads the resource, changes its labels and writes
them back under the etag it read; when another change came in between (the API answers
ABORTED), it reads and applies again (etag_retry), so no concurrent change is lost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.gateway.dialect import Dialect, invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.openstack.common import Scope
from kumo.gateway.openstack.microversions import Version

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


class LabelMetadata(ABC):
    """GET/POST/PUT `/metadata`, GET/PUT/DELETE `/metadata/{key}` of one kind of resource:
    the dialect says how to find it and write its labels, and what DELETE answers."""

    #: The status of a deleted item (Nova 204, Cinder 200).
    deleted_status = 204

    @abstractmethod
    async def begin(self, request: Request) -> tuple[Scope, Version]:
        """The caller's scope and the negotiated microversion."""

    @abstractmethod
    def reply(self, version: Version, body: Any = None, status: int = 200) -> Response:
        """The dialect's JSON answer."""

    @abstractmethod
    async def labelled(self, scope: Scope, request: Request) -> Any:
        """The path's resource (its `labels` and `etag`); 404 if there is none."""

    @abstractmethod
    async def relabel(self, scope: Scope, resource: Any, labels: Labels) -> Labels:
        """Writes `labels` as the resource's under its etag; the labels after. ABORTED if
        it changed since it was read."""

    def routes(self, dialect: Dialect, path: str) -> list[Route]:
        """The six routes under `path` (the resource's `.../metadata`)."""
        return [
            dialect.route(path, self.list, ["GET"]),
            dialect.route(path, self.merge, ["POST"]),
            dialect.route(path, self.replace, ["PUT"]),
            dialect.route(path + "/{key}", self.show, ["GET"]),
            dialect.route(path + "/{key}", self.set, ["PUT"]),
            dialect.route(path + "/{key}", self.delete, ["DELETE"]),
        ]

    async def _change(
        self, scope: Scope, request: Request, change: Callable[[Labels], Labels]
    ) -> Labels:
        """Reads the resource, applies `change` to its labels and writes them, again while
        another change came in between. Raises what `change` raises, and RpcFailure as the
        dialect's calls do."""

        async def attempt() -> Labels:
            resource = await self.labelled(scope, request)
            return await self.relabel(scope, resource, change(dict(resource.labels)))

        return await until_written(attempt, aborted)

    async def list(self, request: Request) -> Response:
        """GET /metadata."""
        scope, version = await self.begin(request)
        resource = await self.labelled(scope, request)
        return self.reply(version, {"metadata": dict(resource.labels)})

    async def merge(self, request: Request) -> Response:
        """POST /metadata: sets the given items, keeps the others; all items after."""
        scope, version = await self.begin(request)
        given = _strings(await json_body(request), "metadata")
        labels = await self._change(scope, request, lambda old: {**old, **given})
        return self.reply(version, {"metadata": labels})

    async def replace(self, request: Request) -> Response:
        """PUT /metadata: the given items become all of the resource's metadata."""
        scope, version = await self.begin(request)
        given = _strings(await json_body(request), "metadata")
        labels = await self._change(scope, request, lambda _: given)
        return self.reply(version, {"metadata": labels})

    async def show(self, request: Request) -> Response:
        """GET /metadata/{key}; 404 if the resource has no such item."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]
        resource = await self.labelled(scope, request)
        if key not in resource.labels:
            raise _missing()
        return self.reply(version, {"meta": {key: resource.labels[key]}})

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
        """DELETE /metadata/{key}: `deleted_status`; 404 if the resource has no such
        item."""
        scope, version = await self.begin(request)
        key = request.path_params["key"]

        def without(old: Labels) -> Labels:
            if key not in old:
                raise _missing()
            return {k: v for k, v in old.items() if k != key}

        await self._change(scope, request, without)
        return self.reply(version, status=self.deleted_status)
