"""Nova's server tags (microversion 2.26): `/servers/{id}/tags[/{tag}]` over the instance's
Kumo tags, and the list filters `tags`, `tags-any`, `not-tags` and `not-tags-any`.

Nova's limits apply here (at most 50 tags per server, each 1-60 characters without `/` or
`,`: 400 otherwise); the API's own are wider. Each change reads the server and writes its
whole tag list back under the etag it read, again while the server changed meanwhile (it
does as it builds: etag_retry), so no concurrent change is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.dialect import invalid, json_body
from kumo.gateway.errors import RpcFailure
from kumo.gateway.etag_retry import aborted, until_written
from kumo.gateway.openstack.common import Scope, quoted
from kumo.gateway.openstack.microversions import Version
from kumo.gateway.openstack.nova.base import NovaBase

V2_26, V2_52 = Version(2, 26), Version(2, 52)
MAX_TAGS = 50
MAX_TAG_LENGTH = 60


def _checked(tag: Any) -> str:
    """`tag` if Nova accepts it; 400 otherwise."""
    if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG_LENGTH or set(tag) & {"/", ","}:
        raise invalid(
            f"Invalid input for field/attribute tags. Value: {tag!r}: tags are strings of "
            f"1-{MAX_TAG_LENGTH} characters without '/' or ','"
        )
    return tag


def _bounded(tags: list[str]) -> list[str]:
    """`tags` if within the per-server limit; 400 otherwise."""
    if len(tags) > MAX_TAGS:
        raise invalid(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    return tags


def checked_list(given: Any) -> list[str]:
    """A request's list of tags, repeats dropped; 400 unless Nova accepts it."""
    if not isinstance(given, list):
        raise invalid("the body needs a 'tags' list")
    return _bounded(list(dict.fromkeys(_checked(t) for t in given)))


def filter_terms(query: Mapping[str, str]) -> list[str]:
    """Kumo filter terms for Nova's tag filters in `query` (comma-separated tags):
    `tags` all of them, `tags-any` one of them, `not-tags` not all of them, `not-tags-any`
    none of them."""
    terms = []

    def has(tag: str) -> str:
        return f"tags:{quoted(tag)}"

    def listed(key: str) -> list[str]:
        return [t for t in query.get(key, "").split(",") if t]

    terms += [has(t) for t in listed("tags")]
    if wanted := listed("tags-any"):
        terms.append("(" + " OR ".join(has(t) for t in wanted) + ")")
    if unwanted := listed("not-tags"):
        terms.append("(" + " OR ".join("NOT " + has(t) for t in unwanted) + ")")
    terms += ["NOT " + has(t) for t in listed("not-tags-any")]
    return terms


class ServerTags(NovaBase):
    """The six tag routes of a server (404 below microversion 2.26, as Nova)."""

    async def _begin(self, request: Request) -> tuple[Scope, Version]:
        scope, version = await self.begin(request)
        if version < V2_26:
            raise RpcFailure.of(grpc.StatusCode.NOT_FOUND, "The resource could not be found.")
        return scope, version

    async def _change(
        self, scope: Scope, request: Request, change: Callable[[list[str]], list[str]]
    ) -> list[str]:
        """Reads the path's server, applies `change` to its tags and writes them under its
        etag, again while the server changed meanwhile; the tags after. Raises what
        `change` raises, 404 without the server."""

        async def attempt() -> list[str]:
            server = await self.server_of(scope, request)
            message = cpb.Instance(name=server.name, tags=change(list(server.tags)))
            message.etag = server.etag
            return list((await self.update_instance(scope, message, "tags")).tags)

        return await until_written(attempt, aborted)

    async def list(self, request: Request) -> Response:
        """GET /tags."""
        scope, version = await self._begin(request)
        server = await self.server_of(scope, request)
        return self.reply(version, {"tags": list(server.tags)})

    async def replace(self, request: Request) -> Response:
        """PUT /tags `{"tags": [...]}`: those become all of the server's tags."""
        scope, version = await self._begin(request)
        wanted = checked_list((await json_body(request)).get("tags"))
        tags = await self._change(scope, request, lambda _: wanted)
        return self.reply(version, {"tags": tags})

    async def clear(self, request: Request) -> Response:
        """DELETE /tags: 204, no tags left."""
        scope, version = await self._begin(request)
        await self._change(scope, request, lambda _: [])
        return self.reply(version, status=204)

    async def check(self, request: Request) -> Response:
        """GET /tags/{tag}: 204 if the server has it, 404 otherwise."""
        scope, version = await self._begin(request)
        server = await self.server_of(scope, request)
        tag = request.path_params["tag"]
        if tag not in server.tags:
            raise _no_tag(server.uid, tag)
        return self.reply(version, status=204)

    async def add(self, request: Request) -> Response:
        """PUT /tags/{tag}: 201 with its Location if new, 204 if the server had it."""
        scope, version = await self._begin(request)
        tag = _checked(request.path_params["tag"])
        had: list[bool] = []

        def added(tags: list[str]) -> list[str]:
            had[:] = [tag in tags]
            return tags if had[0] else _bounded([*tags, tag])

        await self._change(scope, request, added)
        if had[0]:
            return self.reply(version, status=204)
        location = f"{self.base(request)}{request.url.path}"
        return self.reply(version, status=201, Location=location)

    async def remove(self, request: Request) -> Response:
        """DELETE /tags/{tag}: 204; 404 if the server does not have it."""
        scope, version = await self._begin(request)
        tag = request.path_params["tag"]

        def removed(tags: list[str]) -> list[str]:
            if tag not in tags:
                raise _no_tag(request.path_params["server_id"], tag)
            return [t for t in tags if t != tag]

        await self._change(scope, request, removed)
        return self.reply(version, status=204)


def _no_tag(server: str, tag: str) -> RpcFailure:
    return RpcFailure.of(grpc.StatusCode.NOT_FOUND, f"Instance {server} has no tag '{tag}'")
