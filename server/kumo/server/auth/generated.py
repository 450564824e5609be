"""Secrets Kumo makes up for people to type or paste: letters and digits only.

A generated admin password, an access key's secret and a volume transfer's auth key end up
on command lines (`kumo login --password`, `aws configure set`, `openstack volume transfer
request accept --auth-key`), where a value starting with `-` reads as an option (and
URL-safe base64 starts with `-` once in 32). 62 symbols give 5.95 bits each.
"""

from __future__ import annotations

import secrets
import string

_SYMBOLS = string.ascii_letters + string.digits


def typeable_secret(length: int) -> str:
    """`length` random letters and digits (cryptographically random). Never starts with
    `-`, `_` or anything a shell or an option parser treats specially."""
    return "".join(secrets.choice(_SYMBOLS) for _ in range(length))
