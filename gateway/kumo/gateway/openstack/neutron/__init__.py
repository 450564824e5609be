"""Neutron v2.0 (`/network`) over Kumo's network service.

A Neutron id is the Kumo resource's uid. The gateway finds a resource by its id, and
renders references between resources, from the caller's own listings (networks of
`projects/-`, which include every external network; subnets of each; the project's
ports, routers, floating IPs and security groups), read once per request (`index.Index`).
Filters (`?name=...`, any attribute), `fields=` and `limit`/`marker` paging apply to
the rendered resources, as Neutron applies them to its own.

    app.py     the routes and version/extension documents
    base.py    the handlers' shared parts (scope, calls, list/show replies)
    index.py   the per-request listings and lookups by id
    views.py   Kumo messages -> Neutron dicts
    networks.py, ports.py, routers.py, security_groups.py: the resources
    tags.py    the tag routes of each (over labels)
"""
