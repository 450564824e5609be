"""EC2 resource ids ↔ Kumo resource names.

- Instances: RunInstances names each Kumo instance `i-0` + 16 hex digits (from the
  ClientToken when given, so a repeat names the same instances), and that id is its EC2
  id. An instance created natively (say `web-1`) is `i-web-1` in EC2. Kumo ids start with
  a letter, so the two forms never collide: `i-0...` is the instance id itself, any other
  `i-X` is instance `X`. The zone is not in the id: it is remembered or looked up
  (`operations.instance_views.find_instance`).
- Images: `ami-` + the first 17 hex digits of SHA-256 of the image's name
  (`projects/{p}/images/{i}`): stable, and unique among the images a caller can see.
- Key pairs: the EC2 key name is the Kumo key pair id; `key-` + 17 hex digits of
  SHA-256 of its uid is its KeyPairId.
- Reservations: `r-` + the hex of the first instance's EC2 id (one per RunInstances).
"""

from __future__ import annotations

import hashlib
import re
import secrets

_RUN_ID = re.compile(r"i-0[0-9a-f]{16}")


def _hex17(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:17]


def new_instance_id(project: str, client_token: str, index: int) -> str:
    """The Kumo (and EC2) id of the `index`-th instance of a RunInstances."""
    if not client_token:
        return "i-0" + secrets.token_hex(8)
    return "i-0" + hashlib.sha256(f"{project}/{client_token}/{index}".encode()).hexdigest()[:16]


def instance_ec2_id(kumo_id: str) -> str:
    """The EC2 id of Kumo instance `kumo_id`."""
    return kumo_id if _RUN_ID.fullmatch(kumo_id) else f"i-{kumo_id}"


def instance_kumo_id(ec2_id: str) -> str | None:
    """The Kumo id of EC2 instance id `ec2_id`; None if it cannot name an instance."""
    if _RUN_ID.fullmatch(ec2_id):
        return ec2_id
    if ec2_id.startswith("i-") and len(ec2_id) > 2:
        return ec2_id[2:]
    return None


def image_ec2_id(image_name: str) -> str:
    """The EC2 id of the image named `image_name`."""
    return "ami-" + _hex17(image_name)


def key_pair_ec2_id(uid: str) -> str:
    """The KeyPairId of a key pair with this uid."""
    return "key-" + _hex17(uid)


def reservation_id(first_instance: str) -> str:
    """The reservation id of a RunInstances whose first instance is `first_instance`."""
    return "r-" + _hex17(first_instance)
