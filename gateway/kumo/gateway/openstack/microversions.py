"""OpenStack API microversions (`OpenStack-API-Version: compute 2.53`).

A request names a version in `OpenStack-API-Version: <service> X.Y` (or Nova's legacy
`X-OpenStack-Nova-API-Version: X.Y`); `latest` means the maximum; none means the minimum.
A version outside [min, max] is refused with 406, as Nova does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import grpc
from starlette.requests import Request

from kumo.gateway.errors import RpcFailure

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, order=True)
class Version:
    """A microversion X.Y."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        """`2.38` -> Version(2, 38); INVALID_ARGUMENT (400) when malformed."""
        found = _VERSION.match(text.strip())
        if found is None:
            raise RpcFailure.of(
                grpc.StatusCode.INVALID_ARGUMENT, f"invalid API version {text.strip()!r}"
            )
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class Microversions:
    """The versions a service supports and how it reads them from requests."""

    service: str  # "compute"
    minimum: Version
    maximum: Version
    legacy_header: str = ""  # "x-openstack-nova-api-version"

    def negotiate(self, request: Request) -> Version:
        """The version the request asks for; 406 when unsupported."""
        wanted = ""
        for item in request.headers.getlist("openstack-api-version"):
            for part in item.split(","):
                service, _, version = part.strip().partition(" ")
                if service.lower() == self.service:
                    wanted = version.strip()
        if not wanted and self.legacy_header:
            wanted = request.headers.get(self.legacy_header, "").strip()
        if not wanted:
            return self.minimum
        if wanted.lower() == "latest":
            return self.maximum
        asked = Version.parse(wanted)
        if not self.minimum <= asked <= self.maximum:
            raise RpcFailure.of(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Version {asked} is not supported by the API. Minimum is {self.minimum} "
                f"and maximum is {self.maximum}.",
                406,
            )
        return asked

    def headers(self, version: Version) -> dict[str, str]:
        """The response headers stating the version used."""
        headers = {
            "OpenStack-API-Version": f"{self.service} {version}",
            "Vary": "OpenStack-API-Version",
        }
        if self.legacy_header:
            headers["X-OpenStack-Nova-API-Version"] = str(version)
            headers["Vary"] += ", X-OpenStack-Nova-API-Version"
        return headers
