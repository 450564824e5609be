"""Create/Import/Delete/DescribeKeyPairs over ComputeService's key pairs.

The EC2 key name is the Kumo key pair's display name, and its id when a valid id, else a
hash of it (key_pair_names.py), so any EC2 name is taken; KeyPairId is derived from the
uid (`ids.key_pair_ec2_id`). Created keys are ed25519 (Kumo generates
them); DeleteKeyPair of an unknown key succeeds, as EC2's does. Tags are the key pair's
labels (TagSpecifications of type `key-pair` at creation, CreateTags/DeleteTags after).
"""

from __future__ import annotations

from typing import Any

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import ids
from kumo.gateway.aws.backend import Backend, Caller, invoke
from kumo.gateway.aws.errors import Ec2Error, invalid
from kumo.gateway.aws.operations.common import (
    Params,
    filters_of,
    list_all,
    matches,
    spec_tags,
    tags_of,
    time_of,
)
from kumo.gateway.key_pair_names import key_pair_id, key_pair_ref, last

FILTER_FIELDS = {
    "key-name": lambda k: [k["KeyName"]],
    "key-pair-id": lambda k: [k["KeyPairId"]],
    "fingerprint": lambda k: [k["KeyFingerprint"]],
}


def key_view(key: cpb.KeyPair) -> dict[str, Any]:
    """The EC2 `KeyPairInfo` of a Kumo key pair."""
    return {
        "KeyPairId": ids.key_pair_ec2_id(key.uid),
        "KeyName": key.display_name or last(key.name),
        "KeyFingerprint": key.fingerprint,
        "KeyType": "rsa" if key.public_key.startswith("ssh-rsa") else "ed25519",
        "PublicKey": key.public_key,
        "CreateTime": time_of(key.create_time),
        "Tags": tags_of(key.labels),
    }


async def _create(
    backend: Backend, caller: Caller, params: Params, public_key: str
) -> tuple[cpb.KeyPair, dict[str, Any]]:
    key = await invoke(
        backend.compute.CreateKeyPair,
        capi.CreateKeyPairRequest(
            parent=caller.project_name,
            key_pair_id=key_pair_id(params["KeyName"]),
            key_pair=cpb.KeyPair(
                public_key=public_key,
                labels=spec_tags(params, "key-pair"),
                display_name=params["KeyName"],
            ),
        ),
        caller,
    )
    view = key_view(key)
    return key, {k: view[k] for k in ("KeyPairId", "KeyName", "KeyFingerprint")}


async def create_key_pair(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """CreateKeyPair: Kumo generates the key; the private key is in this answer only."""
    if params.get("KeyType", "ed25519") != "ed25519":
        raise invalid("KeyType", params["KeyType"], "Kumo generates ed25519 keys.")
    key, result = await _create(backend, caller, params, "")
    result["KeyMaterial"] = key.private_key
    return result


async def import_key_pair(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """ImportKeyPair of an OpenSSH public key."""
    material = params["PublicKeyMaterial"]
    try:
        public_key = material.decode().strip()
    except UnicodeDecodeError:
        raise invalid("PublicKeyMaterial", "...", "Not an OpenSSH public key.") from None
    return (await _create(backend, caller, params, public_key))[1]


async def key_pairs(backend: Backend, caller: Caller) -> list[cpb.KeyPair]:
    """The caller's key pairs."""
    request = capi.ListKeyPairsRequest(parent=caller.project_name, page_size=1000)
    return await list_all(backend.compute.ListKeyPairs, request, "key_pairs", caller)


async def find_key_pair(backend: Backend, caller: Caller, key_pair_id: str) -> cpb.KeyPair:
    """The caller's key pair with this KeyPairId. Raises InvalidKeyPair.NotFound."""
    for key in await key_pairs(backend, caller):
        if ids.key_pair_ec2_id(key.uid) == key_pair_id:
            return key
    raise Ec2Error("InvalidKeyPair.NotFound", f"The key pair '{key_pair_id}' does not exist")


async def _all(backend: Backend, caller: Caller) -> list[dict[str, Any]]:
    return [key_view(k) for k in await key_pairs(backend, caller)]


async def describe_key_pairs(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DescribeKeyPairs (KeyNames, KeyPairIds, Filters)."""
    views = await _all(backend, caller)
    for field, member in (("KeyName", "KeyNames"), ("KeyPairId", "KeyPairIds")):
        wanted = params.get(member) or []
        if wanted:
            found = {v[field] for v in views}
            for value in wanted:
                if value not in found:
                    raise Ec2Error(
                        "InvalidKeyPair.NotFound", f"The key pair '{value}' does not exist"
                    )
            views = [v for v in views if v[field] in wanted]
    filters = filters_of(params)
    if not params.get("IncludePublicKey"):
        for view in views:
            view.pop("PublicKey")
    return {"KeyPairs": [v for v in views if matches(v, filters, FILTER_FIELDS)]}


async def delete_key_pair(backend: Backend, caller: Caller, params: Params) -> dict[str, Any]:
    """DeleteKeyPair by KeyName or KeyPairId; unknown keys are not an error."""
    name = params.get("KeyName")
    if not name and params.get("KeyPairId"):
        by_id = {v["KeyPairId"]: v["KeyName"] for v in await _all(backend, caller)}
        name = by_id.get(params["KeyPairId"])
        if name is None:
            return {"Return": True}
    if not name:
        raise Ec2Error("MissingParameter", "The request must contain KeyName or KeyPairId")
    try:
        await invoke(
            backend.compute.DeleteKeyPair,
            capi.DeleteKeyPairRequest(name=key_pair_ref(caller.project, name)),
            caller,
        )
    except Ec2Error as error:
        if error.code != "InvalidKeyPair.NotFound":
            raise
    return {"Return": True}
