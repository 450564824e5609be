"""ComputeService without hosts: flavors, key pairs, server groups, instance validation."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.image.v1 import image_service_pb2 as imapi
from kumo.image.v1 import image_service_pb2_grpc as imrpc
from kumo.image.v1 import resources_pb2 as imgpb
from tests.support.cloud import Stubs, Tenant, rpc_error, set_quota, unique
from tests.support.images import upload_image
from tests.support.topology import make_site

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def compute(stubs: Stubs) -> crpc.ComputeServiceStub:
    return crpc.ComputeServiceStub(stubs.channel)


def make_flavor(admin: Stubs, vcpus: int = 1, memory_mib: int = 128, disk_gib: int = 1) -> str:
    flavor_id = unique("f")
    compute(admin).CreateFlavor(
        capi.CreateFlavorRequest(
            flavor_id=flavor_id,
            flavor=cpb.Flavor(vcpus=vcpus, memory_mib=memory_mib, disk_gib=disk_gib),
        )
    )
    return f"flavors/{flavor_id}"


def test_flavors(admin: Stubs, tenant: Tenant) -> None:
    """Admins manage flavors; everyone reads them; sizes are checked."""
    name = make_flavor(admin, 2, 256, 2)
    member = compute(tenant.stubs["reader"])
    assert member.GetFlavor(capi.GetFlavorRequest(name=name)).memory_mib == 256
    assert name in [
        f.name for f in member.ListFlavors(capi.ListFlavorsRequest(page_size=1000)).flavors
    ]
    code, _ = rpc_error(lambda: make_flavor(tenant.stubs["admin"]))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, status = rpc_error(lambda: make_flavor(admin, 0, 1, 1))
    assert code == INVALID and status is not None
    renamed = compute(admin).UpdateFlavor(
        capi.UpdateFlavorRequest(flavor=cpb.Flavor(name=name, display_name="Small"))
    )
    assert renamed.display_name == "Small" and renamed.memory_mib == 256
    code, _ = rpc_error(
        lambda: compute(admin).UpdateFlavor(
            capi.UpdateFlavorRequest(
                flavor=cpb.Flavor(name=name, vcpus=8), update_mask={"paths": ["vcpus"]}
            )
        )
    )
    assert code == INVALID  # sizes are immutable
    compute(admin).DeleteFlavor(capi.DeleteFlavorRequest(name=name))
    code, _ = rpc_error(lambda: member.GetFlavor(capi.GetFlavorRequest(name=name)))
    assert code == grpc.StatusCode.NOT_FOUND


def test_key_pairs_generated_and_imported(tenant: Tenant, tmp_path: Path) -> None:
    """A generated pair returns its private key once; an imported key keeps its fingerprint."""
    member = compute(tenant.stubs["member"])
    generated = member.CreateKeyPair(
        capi.CreateKeyPairRequest(parent=tenant.name, key_pair_id="gen", key_pair=cpb.KeyPair())
    )
    assert generated.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    again = member.GetKeyPair(capi.GetKeyPairRequest(name=generated.name))
    assert again.private_key == "" and again.public_key.startswith("ssh-ed25519 ")
    key_file = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    public = key_file.with_suffix(".pub").read_text().strip()
    expected = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key_file}.pub"], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    imported = member.CreateKeyPair(
        capi.CreateKeyPairRequest(
            parent=tenant.name, key_pair_id="imp", key_pair=cpb.KeyPair(public_key=public)
        )
    )
    assert imported.fingerprint == expected
    for bad in ("ssh-rsa AAAA", "ssh-made-up AAAA", "[1, 2]"):  # (unknown types too)
        code, _ = rpc_error(
            lambda bad=bad: member.CreateKeyPair(
                capi.CreateKeyPairRequest(
                    parent=tenant.name,
                    key_pair_id="bad",
                    key_pair=cpb.KeyPair(public_key=bad),
                )
            )
        )
        assert code == INVALID, bad
    listed = member.ListKeyPairs(capi.ListKeyPairsRequest(parent=tenant.name))
    assert sorted(k.name.rsplit("/", 1)[1] for k in listed.key_pairs) == ["gen", "imp"]
    member.DeleteKeyPair(capi.DeleteKeyPairRequest(name=imported.name))


def test_update_key_pair_labels(tenant: Tenant) -> None:
    """Labels are given at creation and changed by UpdateKeyPair under the etag; the key
    itself is immutable (a masked public_key is INVALID_ARGUMENT) and nothing changes on
    a refusal."""
    member = compute(tenant.stubs["member"])
    key = member.CreateKeyPair(
        capi.CreateKeyPairRequest(
            parent=tenant.name, key_pair_id="labelled", key_pair=cpb.KeyPair(labels={"a": "1"})
        )
    )
    assert dict(key.labels) == {"a": "1"} and key.etag
    request = capi.UpdateKeyPairRequest(
        key_pair=cpb.KeyPair(name=key.name, etag=key.etag, labels={"b": "2"}),
        update_mask={"paths": ["labels"]},
    )
    updated = member.UpdateKeyPair(request)
    assert dict(updated.labels) == {"b": "2"} and updated.etag != key.etag
    assert updated.public_key == key.public_key and updated.fingerprint == key.fingerprint
    code, _ = rpc_error(lambda: member.UpdateKeyPair(request))  # stale etag
    assert code == grpc.StatusCode.ABORTED
    code, _ = rpc_error(
        lambda: member.UpdateKeyPair(
            capi.UpdateKeyPairRequest(
                key_pair=cpb.KeyPair(name=key.name, public_key="ssh-ed25519 AAAA"),
                update_mask={"paths": ["public_key"]},
            )
        )
    )
    assert code == INVALID
    code, _ = rpc_error(
        lambda: member.UpdateKeyPair(
            capi.UpdateKeyPairRequest(key_pair=cpb.KeyPair(name=key.name, labels={"k": "v" * 64}))
        )
    )
    assert code == INVALID
    stored = member.GetKeyPair(capi.GetKeyPairRequest(name=key.name))
    assert dict(stored.labels) == {"b": "2"} and stored.etag == updated.etag
    member.DeleteKeyPair(capi.DeleteKeyPairRequest(name=key.name))


def test_server_groups(tenant: Tenant) -> None:
    """Server groups are created with a policy and listed per project."""
    member = compute(tenant.stubs["member"])
    group = member.CreateServerGroup(
        capi.CreateServerGroupRequest(
            parent=tenant.name,
            server_group_id="web",
            server_group=cpb.ServerGroup(policy=cpb.ServerGroup.POLICY_ANTI_AFFINITY),
        )
    )
    assert group.policy == cpb.ServerGroup.POLICY_ANTI_AFFINITY and not group.members
    assert member.GetServerGroup(capi.GetServerGroupRequest(name=group.name)).name == group.name
    listed = member.ListServerGroups(capi.ListServerGroupsRequest(parent=tenant.name))
    assert [g.name for g in listed.server_groups] == [group.name]
    member.DeleteServerGroup(capi.DeleteServerGroupRequest(name=group.name))


@pytest.fixture
def ready(admin: Stubs, tenant: Tenant) -> tuple[str, str, str]:
    """(zone parent, flavor, image) for creating instances in the tenant."""
    site = make_site(admin)
    image = upload_image(tenant.stubs["member"], tenant.name, min_ram_mib=64)
    return f"{tenant.name}/zones/{site.zone}", make_flavor(admin), image


def create(stubs: Stubs, parent: str, instance_id: str, **spec: Any) -> operations_pb2.Operation:
    op: operations_pb2.Operation = compute(stubs).CreateInstance(
        capi.CreateInstanceRequest(
            parent=parent, instance_id=instance_id, instance=cpb.Instance(**spec)
        )
    )
    return op


def test_no_host_means_error_with_the_reason(tenant: Tenant, ready: tuple[str, str, str]) -> None:
    """With no live host the build fails, the instance is ERROR and says why."""
    parent, flavor, image = ready
    member = tenant.stubs["member"]
    op = create(member, parent, "lonely", flavor=flavor, image=image)
    done = member.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=op.name))
    assert done.done and done.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    instance = compute(member).GetInstance(
        capi.GetInstanceRequest(name=f"{parent}/instances/lonely")
    )
    assert instance.state == cpb.Instance.STATE_ERROR and "no valid host" in instance.status_message
    deleted = compute(member).DeleteInstance(capi.DeleteInstanceRequest(name=instance.name))
    member.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=deleted.name))
    code, _ = rpc_error(
        lambda: compute(member).GetInstance(capi.GetInstanceRequest(name=instance.name))
    )
    assert code == grpc.StatusCode.NOT_FOUND


def test_instance_validation(admin: Stubs, tenant: Tenant, ready: tuple[str, str, str]) -> None:
    """Bad references and sizes are INVALID_ARGUMENT/NOT_FOUND and create nothing."""
    parent, flavor, image = ready
    member = tenant.stubs["member"]
    tiny = make_flavor(admin, 1, 64, 1)
    cases: list[tuple[dict[str, Any], grpc.StatusCode]] = [
        ({"flavor": "flavors/nope", "image": image}, grpc.StatusCode.NOT_FOUND),
        ({"flavor": flavor, "image": f"{tenant.name}/images/nope"}, grpc.StatusCode.NOT_FOUND),
        ({"flavor": flavor, "image": image, "hostname": "Bad_Host"}, INVALID),
        ({"flavor": flavor, "image": image, "key_pairs": [f"{tenant.name}/keyPairs/x"]}, INVALID),
        (
            {"flavor": flavor, "image": image, "requested_host": "hosts/h"},
            grpc.StatusCode.PERMISSION_DENIED,
        ),
        ({"flavor": flavor, "image": image, "user_data": b"x" * (65 << 10)}, INVALID),
        ({"image": image}, INVALID),
    ]
    upload_image(member, tenant.name, image_id="big", min_ram_mib=4096)
    cases.append(({"flavor": tiny, "image": f"{tenant.name}/images/big"}, INVALID))
    queued = imrpc.ImageServiceStub(member.channel).CreateImage(  # no data uploaded
        imapi.CreateImageRequest(
            parent=tenant.name,
            image_id="queued",
            image=imgpb.Image(disk_format=imgpb.DISK_FORMAT_QCOW2),
        )
    )
    cases.append(({"flavor": flavor, "image": queued.name}, grpc.StatusCode.FAILED_PRECONDITION))
    for spec, expected in cases:
        code, _ = rpc_error(partial(create, member, parent, unique("v"), **spec))
        assert code == expected, spec
    # An administrator's requested host must exist (checked at create, not at the build).
    code, _ = rpc_error(
        partial(create, admin, parent, unique("v"), flavor=flavor, image=image,
                requested_host="hosts/no-such-host")
    )  # fmt: skip
    assert code == INVALID
    nowhere = f"{tenant.name}/zones/{unique('nozone')}"
    code, _ = rpc_error(partial(create, member, nowhere, unique("v"), flavor=flavor, image=image))
    assert code == grpc.StatusCode.NOT_FOUND
    listed = compute(member).ListInstances(
        capi.ListInstancesRequest(parent=f"{tenant.name}/zones/-")
    )
    assert not listed.instances


def test_instances_boot_only_from_images_their_project_sees(
    tenant: Tenant, other_tenant: Tenant, ready: tuple[str, str, str]
) -> None:
    """Another project's private image is NOT_FOUND to a create; once that project shares
    it with this one, the create is accepted."""
    parent, flavor, _ = ready
    owner = other_tenant.stubs["member"]
    theirs = upload_image(owner, other_tenant.name)
    member = tenant.stubs["member"]
    code, _ = rpc_error(partial(create, member, parent, unique("v"), flavor=flavor, image=theirs))
    assert code == grpc.StatusCode.NOT_FOUND
    images = imrpc.ImageServiceStub(owner.channel)
    images.UpdateImage(
        imapi.UpdateImageRequest(image=imgpb.Image(name=theirs, visibility=imgpb.VISIBILITY_SHARED))
    )
    images.CreateImageMember(
        imapi.CreateImageMemberRequest(parent=theirs, member_project=tenant.name)
    )
    assert create(member, parent, unique("v"), flavor=flavor, image=theirs).name


def test_instance_quota(admin: Stubs, tenant: Tenant, ready: tuple[str, str, str]) -> None:
    """Creating past the instances quota is RESOURCE_EXHAUSTED and creates nothing."""
    parent, flavor, image = ready
    set_quota(admin, tenant, instances=0)
    code, status = rpc_error(
        lambda: create(tenant.stubs["member"], parent, "q", flavor=flavor, image=image)
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and status is not None
    assert "QuotaFailure" in status.details[0].type_url


def test_readers_cannot_create_instances(tenant: Tenant, ready: tuple[str, str, str]) -> None:
    """Creating an instance needs the member role."""
    parent, flavor, image = ready
    code, _ = rpc_error(
        lambda: create(tenant.stubs["reader"], parent, "r", flavor=flavor, image=image)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED


def _tagged(member: Stubs, parent: str, text: str, show_deleted: bool = False) -> list[str]:
    """The ids of the instances under `parent`'s project that `text` filters, sorted."""
    listed = compute(member).ListInstances(
        capi.ListInstancesRequest(
            parent=parent.rsplit("/", 1)[0] + "/-", filter=text, show_deleted=show_deleted
        )
    )
    return sorted(i.name.rsplit("/", 1)[1] for i in listed.instances)


def test_instance_tags(tenant: Tenant, ready: tuple[str, str, str]) -> None:
    """Tags are set at creation (repeats dropped, order kept), replaced whole by
    UpdateInstance, matched by `tags:` filters with NOT and OR, kept by a deleted
    instance's tombstone; bad tags are INVALID_ARGUMENT on `instance.tags` and change
    nothing."""
    parent, flavor, image = ready
    member = tenant.stubs["member"]
    create(member, parent, "ta", flavor=flavor, image=image, tags=["web", "prod", "web"])
    create(member, parent, "tb", flavor=flavor, image=image, tags=["db", "prod"])
    create(member, parent, "tc", flavor=flavor, image=image)
    name = f"{parent}/instances/ta"
    shown = compute(member).GetInstance(capi.GetInstanceRequest(name=name))
    assert list(shown.tags) == ["web", "prod"]
    assert _tagged(member, parent, 'tags:"prod"') == ["ta", "tb"]
    assert _tagged(member, parent, 'tags:"prod" AND NOT tags:web') == ["tb"]
    assert _tagged(member, parent, '(tags:"web" OR tags:"db")') == ["ta", "tb"]
    assert _tagged(member, parent, "NOT tags:prod") == ["tc"]
    assert _tagged(member, parent, '(NOT tags:"web" OR NOT tags:"prod")') == ["tb", "tc"]
    for bad in (["x" * 256], [""], ["tab\there"], [f"t{i}" for i in range(65)]):
        code, status = rpc_error(
            lambda bad=bad: compute(member).UpdateInstance(
                capi.UpdateInstanceRequest(
                    instance=cpb.Instance(name=name, tags=bad), update_mask={"paths": ["tags"]}
                )
            )
        )
        assert code == INVALID and status is not None
        assert "instance.tags" in str(status.details), bad
        code, _ = rpc_error(
            partial(create, member, parent, unique("v"), flavor=flavor, image=image, tags=bad)
        )
        assert code == INVALID
    again = compute(member).GetInstance(capi.GetInstanceRequest(name=name))
    assert list(again.tags) == ["web", "prod"]
    updated = compute(member).UpdateInstance(
        capi.UpdateInstanceRequest(
            instance=cpb.Instance(name=name, tags=["blue"]), update_mask={"paths": ["tags"]}
        )
    )
    assert list(updated.tags) == ["blue"] and updated.display_name == shown.display_name
    assert _tagged(member, parent, "tags:prod") == ["tb"]
    deleted = compute(member).DeleteInstance(capi.DeleteInstanceRequest(name=name))
    member.operations.WaitOperation(operations_pb2.WaitOperationRequest(name=deleted.name))
    assert _tagged(member, parent, "tags:blue", show_deleted=True) == ["ta"]
    assert _tagged(member, parent, "NOT tags:blue", show_deleted=True) == ["tb", "tc"]
    code, _ = rpc_error(lambda: _tagged(member, parent, "tags = blue"))
    assert code == INVALID
