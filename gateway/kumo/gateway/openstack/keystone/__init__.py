"""Keystone v3 over the identity service.

Kumo's names map one to one: a Keystone project id and name are the Kumo project id, a user
id and name the Kumo user id, role ids and names are `reader`, `member`, `admin`, and there is
one domain, `default` ("Default"). Application credentials are Kumo access keys (id = access
key id, secret = secret access key; the name is kept as the key's description). Tokens are
Kumo tokens, always scoped to a project.

    views.py      Keystone's JSON shapes, the dialect and its helpers
    base.py       what every handler shares (scope, calls, paging through List calls)
    tokens.py     version discovery and tokens (issue, validate, revoke)
    directory.py  domains, roles, projects and users
    grants.py     role assignments and application credentials
    app.py        the routes
"""
