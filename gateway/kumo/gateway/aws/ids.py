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
- Network and storage resources follow the instances' rule with their own prefix
  (`made_id`, `ec2_id`, `kumo_id`): the EC2 create calls name the Kumo resource
  `PREFIX-0` + 16 hex digits (its EC2 id as well), a natively created one `X` is
  `PREFIX-X`. Prefixes: `vpc` networks, `subnet` subnets, `sg` security groups, `eni`
  ports, `eipalloc` floating IPs, `vol` volumes, `snap` snapshots. An Elastic IP's
  AssociationId is `eipassoc-` + 17 hex digits of SHA-256 of its uid and port.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets


def _hex17(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:17]


def new_instance_id(project: str, client_token: str, index: int) -> str:
    """The Kumo (and EC2) id of the `index`-th instance of a RunInstances."""
    if not client_token:
        return "i-0" + secrets.token_hex(8)
    return "i-0" + hashlib.sha256(f"{project}/{client_token}/{index}".encode()).hexdigest()[:16]


def instance_ec2_id(kumo_id_: str) -> str:
    """The EC2 id of Kumo instance `kumo_id_`."""
    return ec2_id("i", kumo_id_)


def volume_ec2_id(volume: str) -> str:
    """The EC2 id of the Kumo volume named `volume` (`projects/p/zones/z/volumes/v`)."""
    return ec2_id("vol", volume.rsplit("/", 1)[-1])


def instance_kumo_id(ec2_id_: str) -> str | None:
    """The Kumo id of EC2 instance id `ec2_id_`; None if it cannot name an instance."""
    return kumo_id("i", ec2_id_)


def made_id(prefix: str, seed: str = "") -> str:
    """A Kumo (and EC2) id for a resource an EC2 call creates: `PREFIX-0` + 16 hex digits,
    random, or from `seed` (say project and ClientToken) so a repeat names the same one."""
    digits = hashlib.sha256(seed.encode()).hexdigest()[:16] if seed else secrets.token_hex(8)
    return f"{prefix}-0{digits}"


def ec2_id(prefix: str, kumo_id_: str) -> str:
    """The EC2 id of the Kumo resource `kumo_id_` of this kind."""
    return kumo_id_ if _made(prefix).fullmatch(kumo_id_) else f"{prefix}-{kumo_id_}"


def kumo_id(prefix: str, ec2_id_: str) -> str | None:
    """The Kumo id named by EC2 id `ec2_id_`; None if it cannot name one of this kind."""
    if _made(prefix).fullmatch(ec2_id_):
        return ec2_id_
    if ec2_id_.startswith(f"{prefix}-") and len(ec2_id_) > len(prefix) + 1:
        return ec2_id_[len(prefix) + 1 :]
    return None


@functools.cache
def _made(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(prefix)}-0[0-9a-f]{{16}}")


def association_id(uid: str, port: str) -> str:
    """The AssociationId of a floating IP (by uid) associated with `port`."""
    return "eipassoc-" + _hex17(f"{uid}/{port}")


@functools.lru_cache(maxsize=4096)
def image_ec2_id(image_name: str) -> str:
    """The EC2 id of the image named `image_name` (remembered: every described instance
    asks for its image's, and a cloud has few images)."""
    return "ami-" + _hex17(image_name)


def key_pair_ec2_id(uid: str) -> str:
    """The KeyPairId of a key pair with this uid."""
    return "key-" + _hex17(uid)


def reservation_id(first_instance: str) -> str:
    """The reservation id of a RunInstances whose first instance is `first_instance`."""
    return "r-" + _hex17(first_instance)
