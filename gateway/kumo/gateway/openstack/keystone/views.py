"""Keystone's JSON shapes, its error dialect and small helpers."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse

from kumo.gateway.dialect import Dialect, invalid
from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import (
    Scope,
    last_segment,
)
from kumo.gateway.openstack.errors import CONFLICT_OVERRIDES, keystone_error
from kumo.identity.v1 import resources_pb2 as ipb

DIALECT = Dialect("keystone", keystone_error, CONFLICT_OVERRIDES)
VERSION = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"
MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def version_document(base: str) -> dict[str, Any]:
    """The v3 version entry."""
    return {
        "id": VERSION,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{base}/v3/"}],
        "media-types": MEDIA,
    }


def domain_check(domain_id: Any = None, domain_name: Any = None) -> None:
    if domain_id not in (None, "default") or domain_name not in (None, "Default", "default"):
        raise invalid("Kumo has one domain, 'default' (named 'Default')")


def project_json(project: ipb.Project, base: str) -> dict[str, Any]:
    """A Kumo project as a Keystone project."""
    project_id = last_segment(project.name)
    return {
        "id": project_id,
        "name": project_id,
        "description": project.description,
        "domain_id": "default",
        "parent_id": "default",
        "enabled": True,
        "is_domain": False,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/v3/projects/{project_id}"},
    }


def user_json(user: ipb.User, base: str) -> dict[str, Any]:
    """A Kumo user as a Keystone user."""
    user_id = last_segment(user.name)
    return {
        "id": user_id,
        "name": user_id,
        "email": user.email or None,
        "description": user.display_name,
        "domain_id": "default",
        "enabled": not user.disabled,
        "password_expires_at": None,
        "options": {},
        "links": {"self": f"{base}/v3/users/{user_id}"},
    }


def role_json(name: str, base: str) -> dict[str, Any]:
    """One of Kumo's three roles as a Keystone role."""
    return {
        "id": name,
        "name": name,
        "domain_id": None,
        "description": f"Kumo's {name} role",
        "options": {},
        "links": {"self": f"{base}/v3/roles/{name}"},
    }


def credential_json(key: ipb.AccessKey, scope: Scope, user: str) -> dict[str, Any]:
    """A Kumo access key as a Keystone application credential."""
    body: dict[str, Any] = {
        "id": key.access_key_id,
        "name": key.description or key.access_key_id,
        "description": key.description,
        "user_id": user,
        "project_id": last_segment(key.project),
        "roles": [{"id": r, "name": r} for r in scope.roles],
        "expires_at": None,
        "unrestricted": False,
        "access_rules": [],
    }
    if key.secret_access_key:
        body["secret"] = key.secret_access_key
    return body


def audit_id(token: str) -> str:
    """A token's audit id: a digest that names it in logs without revealing it."""
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:22]


def forbidden(action: str) -> RpcFailure:
    return RpcFailure.of(
        grpc.StatusCode.PERMISSION_DENIED,
        f"You are not authorized to perform the requested action: {action}.",
    )


def listed(name: str, items: list[dict[str, Any]], request: Request) -> JSONResponse:
    return JSONResponse(
        {name: items, "links": {"self": str(request.url), "next": None, "previous": None}}
    )
