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
