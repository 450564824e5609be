"""Resource names: users may type a short id (`alice`) or a full name (`users/alice`).

Kumo's names follow AIP-122: a collection and an id, optionally under a parent
(`projects/prod/roleAssignments/alice-admin`). These helpers turn what a user
typed into the full name and back; they check shape only, never existence.
"""

from __future__ import annotations

ROLE_IDS = ("reader", "member", "admin")
"""Role ids as they appear in role assignment names, weakest first."""


def full_name(collection: str, value: str, parent: str = "") -> str:
    """Returns the full resource name for `value`, a short id or a full name.

    `full_name("users", "alice")` and `full_name("users", "users/alice")` are both
    `"users/alice"`; with `parent="users/alice"`, `full_name("accessKeys", "KUMO1")`
    is `"users/alice/accessKeys/KUMO1"`.

    Raises ValueError if `value` is empty, or is a full name of another collection
    or parent.
    """
    prefix = f"{parent}/{collection}/" if parent else f"{collection}/"
    value = value.strip()
    if not value:
        raise ValueError(f"expected a {collection} id or name, got an empty value")
    if "/" not in value:
        return prefix + value
    if value.startswith(prefix) and "/" not in value[len(prefix) :] and value != prefix:
        return value
    raise ValueError(f"{value!r} is not a {collection} id or a name like '{prefix}ID'")


def project_resource_name(collection: str, value: str, project: str) -> str:
    """Returns the full name of a project's resource given as an id or a full name.

    `project_resource_name("images", "foo", "projects/p")` is
    `"projects/p/images/foo"` (`project` may be a short id too);
    `"projects/q/images/foo"` is returned as it is, whatever `project`.

    Raises ValueError if `value` is empty or a name of another shape, or if it
    is an id and `project` is empty.
    """
    value = value.strip()
    if not value:
        raise ValueError(f"expected a {collection} id or name, got an empty value")
    if "/" not in value:
        if not project:
            raise ValueError(f"{value!r}: no project to find it in; give a full name")
        return f"{full_name('projects', project)}/{collection}/{value}"
    parts = value.split("/")
    if len(parts) == 4 and parts[0] == "projects" and parts[2] == collection and all(parts):
        return value
    raise ValueError(
        f"{value!r} is not a {collection} id or a name like 'projects/PROJECT/{collection}/ID'"
    )


def instance_name(value: str, project: str, zone: str = "") -> str:
    """Returns `projects/{project}/zones/{zone}/instances/{id}` for an instance
    given as an id (in `project` and `zone`, short ids or names) or as a full
    name (returned as it is).

    Raises ValueError if `value` is empty or of another shape, if it is a full
    name in another zone than a `zone` given, or if it is an id and `project`
    or `zone` is empty.
    """
    value = value.strip()
    if not value:
        raise ValueError("expected an instance id or name, got an empty value")
    if "/" in value:
        parts = value.split("/")
        if not (
            len(parts) == 6
            and (parts[0], parts[2], parts[4]) == ("projects", "zones", "instances")
            and all(parts)
        ):
            raise ValueError(
                f"{value!r} is not an instance id or a name like "
                "'projects/PROJECT/zones/ZONE/instances/ID'"
            )
        if zone and parts[3] != short_id(zone):
            raise ValueError(f"{value!r} is not in zone {short_id(zone)!r}")
        return value
    if not project or not zone:
        raise ValueError(f"{value!r}: no {'project' if not project else 'zone'} to find it in")
    return f"{full_name('projects', project)}/zones/{short_id(zone)}/instances/{value}"


def short_id(name: str) -> str:
    """Returns the last segment of a resource name: `users/alice` -> `alice`."""
    return name.rsplit("/", 1)[-1]


def role_assignment_name(project: str, user: str, role: str) -> str:
    """Returns `projects/{project}/roleAssignments/{user}-{role}`.

    `project` and `user` may be short ids or full names; `role` is one of
    ROLE_IDS. Raises ValueError for a malformed project, user or role.
    """
    if role not in ROLE_IDS:
        raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLE_IDS)}")
    project_name = full_name("projects", project)
    user_id = short_id(full_name("users", user))
    return f"{project_name}/roleAssignments/{user_id}-{role}"
