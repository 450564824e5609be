"""HTTP bindings read from the service descriptors (google/api/http.proto rules).

`bindings(services)` yields one `Binding` per rule (the main one and its
`additional_bindings`) of every unary method. A path template such as
`/v1/{name=projects/*/zones/*/instances/*}:start` compiles to a regex whose groups fill the
request fields named by its variables. Streaming methods are not bound (their data goes
through the dialects that define an upload or download: Glance's image file).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

_VERBS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}")


@dataclass(frozen=True)
class Variable:
    """A path variable: the request field it sets and the segments pattern it matches."""

    field: str
    pattern: str  # the http.proto segments, e.g. "projects/*/zones/*"; "*" when not given


@dataclass(frozen=True)
class Binding:
    """One HTTP rule of one method."""

    method: MethodDescriptor
    http_method: str  # GET, POST, ...
    template: str
    body: str  # "", "*" or a field name
    regex: re.Pattern[str]
    variables: tuple[Variable, ...]

    @property
    def grpc_path(self) -> str:
        """`/package.Service/Method`."""
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    def match(self, http_method: str, path: str) -> dict[str, str] | None:
        """The path variables' values if this binding serves the request, else None."""
        if http_method != self.http_method:
            return None
        found = self.regex.fullmatch(path)
        if found is None:
            return None
        return {var.field: found.group(f"v{i}") for i, var in enumerate(self.variables)}


def segments_regex(pattern: str) -> str:
    parts = []
    for segment in pattern.split("/"):
        if segment == "**":
            parts.append(r"[^:]+")
        elif segment == "*":
            parts.append(r"[^/:]+")
        else:
            parts.append(re.escape(segment))
    return "/".join(parts)


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[Variable, ...]]:
    """The regex matching a path template and its variables, in order."""
    variables: list[Variable] = []
    regex = ""
    position = 0
    for found in _VARIABLE.finditer(template):
        regex += segments_regex(template[position : found.start()])
        variable = Variable(found.group(1), found.group(2) or "*")
        regex += f"(?P<v{len(variables)}>{segments_regex(variable.pattern)})"
        variables.append(variable)
        position = found.end()
    regex += segments_regex(template[position:])
    return re.compile(regex), tuple(variables)


def _rules(rule: http_pb2.HttpRule) -> Iterator[http_pb2.HttpRule]:
    yield rule
    for extra in rule.additional_bindings:
        yield from _rules(extra)


def bindings(services: Iterable[ServiceDescriptor]) -> Iterator[Binding]:
    """Every HTTP binding of the services' unary methods."""
    for service in services:
        for method in service.methods:
            if method.client_streaming or method.server_streaming:
                continue
            options = method.GetOptions()
            if not options.HasExtension(annotations_pb2.http):
                continue
            for rule in _rules(options.Extensions[annotations_pb2.http]):
                verb = rule.WhichOneof("pattern")
                if verb not in _VERBS:
                    continue
                template = getattr(rule, verb)
                regex, variables = compile_template(template)
                yield Binding(method, verb.upper(), template, rule.body, regex, variables)
