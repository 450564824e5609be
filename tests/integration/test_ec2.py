"""The EC2 dialect with the real clients (boto3, the aws CLI) against a real API server,
fake compute hosts (real kumo-agents on FakeDriver) and the gateway under uvicorn.

What it proves: instance life cycle (ClientToken idempotency, Min/MaxCount, placement,
key name, user data, tags), paging through 500 instances, key pairs, tags, regions and
zones, SigV4 failures (forged, unknown key, tampered body and headers, expired, replayed,
presigned), tenant isolation, and bad input answered with EC2 codes, never a 500 (a table
of cases, and every implemented action with odd values for each of its members).
"""

from __future__ import annotations

import base64
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from unittest import mock

import grpc
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.model import ListShape, StructureShape
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import compute_service_pb2_grpc as crpc
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.drivers.compute.fake import FakeDriver
from kumo.gateway.aws import ids, model, query, sigv4
from kumo.gateway.aws.dispatch import HANDLERS
from kumo.identity.v1 import identity_service_pb2 as iapi
from tests.support.agent import AgentThread
from tests.support.cloud import Stubs, Tenant, rpc_error, set_quota, unique
from tests.support.ec2 import (
    REGION,
    AccessKey,
    GatewayThread,
    access_key,
    aws_cli,
    cli_json,
    ec2_client,
)
from tests.support.images import upload_image
from tests.support.server import ServerThread
from tests.support.topology import Site, make_site

WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def gateway(api: ServerThread) -> Iterator[str]:
    """The gateway's URL."""
    thread = GatewayThread(api.address)
    try:
        yield thread.url
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def site(api: ServerThread, admin: Stubs) -> Iterator[tuple[Site, str]]:
    """A zone with two fake hosts (room for 1,000 small instances) and a flavor id."""
    site = make_site(admin)
    agents = [
        AgentThread(
            api.address,
            admin.token or "",
            unique("ec2h"),
            site.rack,
            FakeDriver(vcpus=600, memory_mib=600 * 1024, disk_gib=10_000),
        )
        for _ in range(2)
    ]
    flavor = unique("ec2f")
    crpc.ComputeServiceStub(admin.channel).CreateFlavor(
        capi.CreateFlavorRequest(
            flavor_id=flavor, flavor=cpb.Flavor(vcpus=1, memory_mib=128, disk_gib=1)
        )
    )
    try:
        yield site, flavor
    finally:
        for agent in agents:
            agent.stop()


def _ami(tenant: Tenant) -> str:
    return ids.image_ec2_id(upload_image(tenant.stubs["member"], tenant.name))


def _raise_quota(admin: Stubs, tenant: Tenant, instances: int) -> None:
    set_quota(admin, tenant, instances=instances, vcpus=instances, ram_mib=instances * 128)


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    status = info.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status < 500, info.value.response
    return str(info.value.response["Error"]["Code"])


def _next_second() -> None:
    """Sleeps into the next second: SigV4 has no nonce, so a byte-identical mutating
    request signed within the same second (X-Amz-Date's precision) is refused as a replay
    (see kumo/gateway/aws/replay.py)."""
    time.sleep(1.0 - time.time() % 1.0 + 0.01)


def _wait_state(ec2: Any, instance_ids: list[str], state: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        reservations = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
        states = {i["State"]["Name"] for r in reservations for i in r["Instances"]}
        if states == {state}:
            return
        assert time.monotonic() < deadline, f"still {states}, wanted {state}"
        time.sleep(0.3)


def _wait_terminated(ec2: Any, instance_ids: list[str]) -> None:
    """Until the listing (no InstanceIds: every page) shows them all `terminated`."""
    deadline = time.monotonic() + WAIT_SECONDS
    wanted = set(instance_ids)
    while True:
        states = {
            i["InstanceId"]: i["State"]["Name"]
            for page in ec2.get_paginator("describe_instances").paginate()
            for r in page["Reservations"]
            for i in r["Instances"]
            if i["InstanceId"] in wanted
        }
        left = {i: s for i, s in states.items() if s != "terminated"}
        if set(states) == wanted and not left:
            return
        assert time.monotonic() < deadline, f"not terminated: {left or wanted - set(states)}"
        time.sleep(0.3)


def test_instance_life_cycle(gateway: str, site: tuple[Site, str], tenant: Tenant) -> None:
    zone, flavor = site[0].zone, site[1]
    ec2 = ec2_client(gateway, access_key(tenant))
    ec2.create_key_pair(KeyName="Life Key_1")  # (EC2's names need not be Kumo ids)
    ami = _ami(tenant)
    run = dict(
        ImageId=ami,
        InstanceType=flavor,
        MinCount=2,
        MaxCount=2,
        KeyName="Life Key_1",
        Placement={"AvailabilityZone": zone},
        UserData="IyEvYmluL3NoCmVjaG8gaGk=",
        ClientToken="life-cycle-1",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "w"}]}],
    )
    first = ec2.run_instances(**run)
    instance_ids = [i["InstanceId"] for i in first["Instances"]]
    assert len(instance_ids) == 2 and all(i.startswith("i-0") for i in instance_ids)
    assert {i["State"]["Name"] for i in first["Instances"]} == {"pending"}
    _next_second()
    again = ec2.run_instances(**run)  # same ClientToken: the same instances
    assert [i["InstanceId"] for i in again["Instances"]] == instance_ids
    assert first["ReservationId"] == again["ReservationId"]
    _wait_state(ec2, instance_ids, "running")
    described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    instance = described[0]["Instances"][0]
    assert instance["Placement"]["AvailabilityZone"] == zone
    assert instance["KeyName"] == "Life Key_1" and instance["ImageId"] == ami
    assert {i["KeyName"] for i in first["Instances"]} == {"Life Key_1"}
    by_key = ec2.describe_instances(Filters=[{"Name": "key-name", "Values": ["Life Key_1"]}])
    assert {i["InstanceId"] for r in by_key["Reservations"] for i in r["Instances"]} >= set(
        instance_ids
    )
    assert instance["InstanceType"] == flavor
    assert instance["Tags"] == [{"Key": "Name", "Value": "w"}]
    statuses = ec2.describe_instance_status(InstanceIds=instance_ids)["InstanceStatuses"]
    assert {s["InstanceStatus"]["Status"] for s in statuses} == {"ok"}

    stopping = ec2.stop_instances(InstanceIds=instance_ids[:1])["StoppingInstances"]
    assert stopping[0]["PreviousState"]["Name"] == "running"
    _wait_state(ec2, instance_ids[:1], "stopped")
    assert ec2.describe_instance_status(InstanceIds=instance_ids[:1])["InstanceStatuses"] == []
    ec2.start_instances(InstanceIds=instance_ids[:1])
    _wait_state(ec2, instance_ids[:1], "running")
    ec2.reboot_instances(InstanceIds=instance_ids[1:])
    _wait_state(ec2, instance_ids, "running")
    _next_second()
    ec2.stop_instances(InstanceIds=instance_ids[:1])
    _wait_state(ec2, instance_ids[:1], "stopped")

    # One bad id among them: nothing is terminated (all are found before any changes).
    assert _code(
        lambda: ec2.terminate_instances(InstanceIds=[*instance_ids, "i-0000000000000000f"])
    ) == ("InvalidInstanceID.NotFound")
    described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    assert [r["Instances"][0]["State"]["Name"] for r in described] == ["stopped", "running"]

    # One id (deleted without a lookup first): its previous state comes from the deletion.
    alone = ec2.terminate_instances(InstanceIds=instance_ids[:1])["TerminatingInstances"]
    assert [(t["PreviousState"]["Name"], t["CurrentState"]["Name"]) for t in alone] == [
        ("stopped", "shutting-down")
    ]
    # The second id twice: its second termination finds it being deleted by the first, and
    # succeeds (terminating more than once succeeds each time, as in EC2).
    twice = [instance_ids[1], instance_ids[1]]
    terminating = ec2.terminate_instances(InstanceIds=twice)["TerminatingInstances"]
    assert [t["InstanceId"] for t in terminating] == twice
    assert [t["PreviousState"]["Name"] for t in terminating] == ["running", "shutting-down"]
    assert {t["CurrentState"]["Name"] for t in terminating} == {"shutting-down"}
    # boto3's own waiter (as `aws ec2 wait instance-terminated`): it succeeds only on
    # seeing them `terminated`; a NotFound fails it.
    ec2.get_waiter("instance_terminated").wait(
        InstanceIds=instance_ids, WaiterConfig={"Delay": 1, "MaxAttempts": WAIT_SECONDS}
    )
    described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    for reservation in described:
        (terminated,) = reservation["Instances"]
        assert terminated["State"] == {"Code": 48, "Name": "terminated"}
        assert terminated["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
        assert terminated["Tags"] == [{"Key": "Name", "Value": "w"}]
    # Terminating a terminated instance succeeds, from and to `terminated` (the first id
    # by the one-id path, with its zone remembered; both by the lookup path).
    _next_second()
    for each in (instance_ids[:1], instance_ids):
        again_terminated = ec2.terminate_instances(InstanceIds=each)["TerminatingInstances"]
        assert [(t["PreviousState"], t["CurrentState"]) for t in again_terminated] == [
            ({"Code": 48, "Name": "terminated"}, {"Code": 48, "Name": "terminated"})
        ] * len(each)
    # Nothing else can be done with one.
    for refused in (ec2.start_instances, ec2.stop_instances, ec2.reboot_instances):
        assert _code(partial(refused, InstanceIds=instance_ids[:1])) == "IncorrectInstanceState"


def test_create_image_from_an_instance(
    gateway: str, site: tuple[Site, str], tenant: Tenant
) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    run = ec2.run_instances(
        ImageId=_ami(tenant), InstanceType=site[1], MinCount=1, MaxCount=1, **_in_zone(site)
    )
    instance_id = run["Instances"][0]["InstanceId"]
    _wait_state(ec2, [instance_id], "running")
    ami = ec2.create_image(InstanceId=instance_id, Name="golden", Description="from ec2")["ImageId"]
    deadline = time.monotonic() + WAIT_SECONDS
    while (image := ec2.describe_images(ImageIds=[ami])["Images"][0])["State"] != "available":
        assert image["State"] == "pending" and time.monotonic() < deadline, image
        time.sleep(0.3)
    assert (image["Name"], image["Description"], image["OwnerId"]) == (
        "golden",
        "from ec2",
        tenant.project,
    )
    ec2.create_tags(Resources=[ami], Tags=[{"Key": "tier", "Value": "gold"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["image"]}])["Tags"]
    assert [(t["ResourceId"], t["Key"], t["Value"]) for t in tags] == [(ami, "tier", "gold")]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["Tags"] == [
        {"Key": "tier", "Value": "gold"}
    ]
    second = ec2.run_instances(
        ImageId=ami, InstanceType=site[1], MinCount=1, MaxCount=1, **_in_zone(site)
    )
    assert second["Instances"][0]["ImageId"] == ami
    ec2.terminate_instances(InstanceIds=[instance_id, second["Instances"][0]["InstanceId"]])


def test_run_instances_errors(gateway: str, site: tuple[Site, str], tenant: Tenant) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    ami = _ami(tenant)
    good = dict(ImageId=ami, InstanceType=site[1], MinCount=1, MaxCount=1)
    assert _code(lambda: ec2.run_instances(**{**good, "ImageId": "ami-00000000000000000"})) == (
        "InvalidAMIID.NotFound"
    )
    assert _code(lambda: ec2.run_instances(**{**good, "KeyName": "nope"})) == (
        "InvalidKeyPair.NotFound"
    )
    assert _code(lambda: ec2.run_instances(**{**good, "MinCount": 3, "MaxCount": 2})) == (
        "InvalidParameterValue"
    )
    placement = {"AvailabilityZone": "no-such-zone"}
    assert _code(lambda: ec2.run_instances(**good, Placement=placement)) == "InvalidZone.NotFound"
    assert _code(lambda: ec2.run_instances(**good, DryRun=True)) == "DryRunOperation"
    assert ec2.describe_instances()["Reservations"] == []


def _in_zone(site: tuple[Site, str]) -> dict[str, Any]:
    """RunInstances' Placement in the test site's zone (the default, the first zone by name,
    may be another test's zone without hosts)."""
    return {"Placement": {"AvailabilityZone": site[0].zone}}


# The pager runs on both databases in other tests (topology, storage, the filters here);
# paging through 500 instances once, on SQLite, is enough (CI time).
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_paging_through_500_instances(
    gateway: str, site: tuple[Site, str], tenant: Tenant, admin: Stubs
) -> None:
    _raise_quota(admin, tenant, 600)
    ec2 = ec2_client(gateway, access_key(tenant))
    run = ec2.run_instances(
        ImageId=_ami(tenant), InstanceType=site[1], MinCount=500, MaxCount=500, **_in_zone(site)
    )
    created = {i["InstanceId"] for i in run["Instances"]}
    assert len(created) == 500
    seen: list[str] = []
    pages = 0
    token: str | None = None
    while True:
        page = ec2.describe_instances(MaxResults=120, **({"NextToken": token} if token else {}))
        pages += 1
        ids_on_page = [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
        assert len(ids_on_page) <= 120
        seen += ids_on_page
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 5 and len(seen) == 500 and set(seen) == created
    paginator = ec2.get_paginator("describe_instances")
    total = sum(
        len(r["Instances"])
        for page in paginator.paginate(PaginationConfig={"PageSize": 200})
        for r in page["Reservations"]
    )
    assert total == 500
    ordered = sorted(created)
    for start in range(0, len(ordered), 100):  # each call within botocore's read timeout
        ec2.terminate_instances(InstanceIds=ordered[start : start + 100])
    _wait_terminated(ec2, ordered)
    # Terminated instances are listed for an hour, after the live ones, paged the same way.
    (live,) = ec2.run_instances(
        ImageId=_ami(tenant), InstanceType=site[1], MinCount=1, MaxCount=1, **_in_zone(site)
    )["Instances"]
    listed: list[tuple[str, str]] = []
    token = None
    while True:
        page = ec2.describe_instances(MaxResults=120, **({"NextToken": token} if token else {}))
        listed += [
            (i["InstanceId"], i["State"]["Name"])
            for r in page["Reservations"]
            for i in r["Instances"]
        ]
        token = page.get("NextToken")
        if not token:
            break
    assert listed[0][0] == live["InstanceId"] and listed[0][1] != "terminated"
    assert sorted(listed[1:]) == [(i, "terminated") for i in ordered]
    ec2.terminate_instances(InstanceIds=[live["InstanceId"]])
    _wait_terminated(ec2, [live["InstanceId"]])


def test_filters_and_tags(gateway: str, site: tuple[Site, str], tenant: Tenant) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    run = ec2.run_instances(
        ImageId=_ami(tenant), InstanceType=site[1], MinCount=3, MaxCount=3, **_in_zone(site)
    )
    a, b, c = (i["InstanceId"] for i in run["Instances"])
    ec2.create_tags(Resources=[a, b], Tags=[{"Key": "role", "Value": "web"}])
    ec2.create_tags(Resources=[c], Tags=[{"Key": "role", "Value": "db"}, {"Key": "x", "Value": ""}])
    # Concurrent tagging of one instance while it builds (its etag changing): every tag lands.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: ec2.create_tags(Resources=[a], Tags=[{"Key": f"t{n}"}]), range(8)))
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [a]}])["Tags"]
    assert {t["Key"] for t in tags} == {"role", *(f"t{n}" for n in range(8))}

    def described(**kwargs: Any) -> set[str]:
        pages = ec2.describe_instances(**kwargs)["Reservations"]
        return {i["InstanceId"] for r in pages for i in r["Instances"]}

    assert described(Filters=[{"Name": "tag:role", "Values": ["web"]}]) == {a, b}
    assert described(Filters=[{"Name": "tag:role", "Values": ["web", "db"]}]) == {a, b, c}
    assert described(Filters=[{"Name": "tag-key", "Values": ["x"]}]) == {c}
    assert described(Filters=[{"Name": "availability-zone", "Values": [site[0].zone]}]) == {
        a,
        b,
        c,
    }
    assert described(Filters=[{"Name": "availability-zone", "Values": ["elsewhere"]}]) == set()
    _wait_state(ec2, [a, b, c], "running")
    assert described(Filters=[{"Name": "instance-state-name", "Values": ["running"]}]) == {
        a,
        b,
        c,
    }
    assert described(Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}]) == set()
    assert _code(lambda: described(Filters=[{"Name": "bogus", "Values": ["1"]}])) == (
        "InvalidParameterValue"
    )

    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [c]}])["Tags"]
    assert {(t["Key"], t["Value"], t["ResourceType"]) for t in tags} == {
        ("role", "db", "instance"),
        ("x", "", "instance"),
    }
    ec2.delete_tags(Resources=[a], Tags=[{"Key": "role", "Value": "not-this"}])
    assert described(Filters=[{"Name": "tag:role", "Values": ["web"]}]) == {a, b}
    ec2.delete_tags(Resources=[a], Tags=[{"Key": "role"}])
    assert described(Filters=[{"Name": "tag:role", "Values": ["web"]}]) == {b}
    assert _code(lambda: ec2.create_tags(Resources=["vol-1"], Tags=[{"Key": "k", "Value": "v"}]))
    ec2.terminate_instances(InstanceIds=[a, b, c])


def test_key_pairs(gateway: str, tenant: Tenant) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    created = ec2.create_key_pair(KeyName="made")
    assert "PRIVATE KEY" in created["KeyMaterial"] and created["KeyPairId"].startswith("key-")
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    imported = ec2.import_key_pair(
        KeyName="Brought key@ci.example",
        PublicKeyMaterial=public,
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "k", "Value": "v"}]}],
    )
    assert imported["KeyFingerprint"]
    # Key pairs are tagged by KeyPairId, with their labels.
    ec2.create_tags(Resources=[created["KeyPairId"]], Tags=[{"Key": "team", "Value": "a"}])
    tagged = ec2.describe_key_pairs(Filters=[{"Name": "tag:team", "Values": ["a"]}])["KeyPairs"]
    team = [{"Key": "team", "Value": "a"}]
    assert [(k["KeyName"], k["Tags"]) for k in tagged] == [("made", team)]
    described = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["key-pair"]}])
    assert {(t["ResourceId"], t["Key"]) for t in described["Tags"]} == {
        (created["KeyPairId"], "team"),
        (imported["KeyPairId"], "k"),
    }
    ec2.delete_tags(Resources=[imported["KeyPairId"]])
    assert ec2.describe_key_pairs(KeyNames=["Brought key@ci.example"])["KeyPairs"][0]["Tags"] == []
    assert _code(
        lambda: ec2.create_tags(Resources=["key-00000000000000000"], Tags=[{"Key": "a"}])
    ) == ("InvalidKeyPair.NotFound")
    _next_second()
    assert _code(lambda: ec2.create_key_pair(KeyName="made")) == "InvalidKeyPair.Duplicate"
    assert _code(lambda: ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"nonsense")) == (
        "InvalidParameterValue"
    )
    names = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert names == {"made", "Brought key@ci.example"}
    one = ec2.describe_key_pairs(KeyNames=["Brought key@ci.example"], IncludePublicKey=True)[
        "KeyPairs"
    ]
    assert one[0]["PublicKey"] == public.decode()
    assert _code(lambda: ec2.describe_key_pairs(KeyNames=["none"])) == "InvalidKeyPair.NotFound"
    ec2.delete_key_pair(KeyName="made")
    ec2.delete_key_pair(KeyPairId=imported["KeyPairId"])
    _next_second()
    ec2.delete_key_pair(KeyName="made")  # already gone: still fine, as EC2
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_regions_zones_and_images(gateway: str, site: tuple[Site, str], tenant: Tenant) -> None:
    ec2 = ec2_client(gateway, access_key(tenant))
    regions = {r["RegionName"] for r in ec2.describe_regions()["Regions"]}
    assert site[0].region in regions
    zones = ec2.describe_availability_zones(
        Filters=[{"Name": "region-name", "Values": [site[0].region]}]
    )["AvailabilityZones"]
    assert [(z["ZoneName"], z["State"]) for z in zones] == [(site[0].zone, "available")]
    ami = _ami(tenant)
    images = ec2.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in images] == [ami]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available"
    assert _code(lambda: ec2.describe_images(ImageIds=["ami-0000000000000000f"])) == (
        "InvalidAMIID.NotFound"
    )


def test_aws_cli(gateway: str, site: tuple[Site, str], tenant: Tenant) -> None:
    key = access_key(tenant)
    ami = _ami(tenant)
    run = cli_json(
        aws_cli(
            gateway,
            key,
            "run-instances",
            "--image-id",
            ami,
            "--instance-type",
            site[1],
            "--count",
            "2",
            "--tag-specifications",
            "ResourceType=instance,Tags=[{Key=via,Value=cli}]",
        )
    )
    instance_ids = sorted(i["InstanceId"] for i in run["Instances"])
    described = cli_json(
        aws_cli(gateway, key, "describe-instances", "--filters", "Name=tag:via,Values=cli")
    )
    assert sorted(i["InstanceId"] for r in described["Reservations"] for i in r["Instances"]) == (
        instance_ids
    )
    zones = cli_json(aws_cli(gateway, key, "describe-availability-zones"))
    assert site[0].zone in {z["ZoneName"] for z in zones["AvailabilityZones"]}
    cli_json(aws_cli(gateway, key, "terminate-instances", "--instance-ids", *instance_ids))
    failed = aws_cli(gateway, AccessKey(key.key_id, "wrong"), "describe-instances")
    assert failed.returncode != 0 and "SignatureDoesNotMatch" in failed.stderr


def test_projects_are_isolated(
    gateway: str, site: tuple[Site, str], tenant: Tenant, other_tenant: Tenant, admin: Stubs
) -> None:
    mine = ec2_client(gateway, access_key(tenant))
    theirs = ec2_client(gateway, access_key(other_tenant))
    run = mine.run_instances(ImageId=_ami(tenant), InstanceType=site[1], MinCount=1, MaxCount=1)
    instance_id = run["Instances"][0]["InstanceId"]
    mine.create_key_pair(KeyName="private")
    assert theirs.describe_instances()["Reservations"] == []
    assert _code(lambda: theirs.describe_instances(InstanceIds=[instance_id])) == (
        "InvalidInstanceID.NotFound"
    )
    assert _code(lambda: theirs.terminate_instances(InstanceIds=[instance_id])) == (
        "InvalidInstanceID.NotFound"
    )
    assert _code(
        lambda: theirs.create_tags(Resources=[instance_id], Tags=[{"Key": "k", "Value": "v"}])
    ) == ("InvalidInstanceID.NotFound")
    assert theirs.describe_key_pairs()["KeyPairs"] == []
    assert theirs.describe_tags()["Tags"] == []
    # My private image: not theirs to use, nor to learn the name of (the gateway has
    # already turned its AMI id into a name for me).
    with pytest.raises(ClientError) as info:
        theirs.run_instances(
            ImageId=run["Instances"][0]["ImageId"], InstanceType=site[1], MinCount=1, MaxCount=1
        )
    assert info.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    assert tenant.name.removeprefix("projects/") not in str(info.value.response["Error"])
    reader = ec2_client(gateway, access_key(tenant, "reader", admin))
    assert len(reader.describe_instances()["Reservations"]) == 1
    assert _code(lambda: reader.terminate_instances(InstanceIds=[instance_id])) == (
        "UnauthorizedOperation"
    )
    mine.terminate_instances(InstanceIds=[instance_id])


# --------------------------------------------------------------------------- raw HTTP


def _send(url: str, body: bytes, headers: dict[str, str], method: str = "POST") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body if method == "POST" else None, method=method)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _signed(
    url: str,
    key: AccessKey,
    body: str,
    when: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    request = AWSRequest(
        method="POST",
        url=url + "/",
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    signer = SigV4Auth(Credentials(key.key_id, key.secret), "ec2", REGION)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)):
        signer.add_auth(request)
    return body.encode(), dict(request.headers.items())


def _error_code(body: str) -> str:
    start = body.index("<Code>") + len("<Code>")
    return body[start : body.index("</Code>")]


DESCRIBE = "Action=DescribeInstances&Version=2016-11-15"
TERMINATE = "Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0000000000000000a"


def test_signatures(gateway: str, tenant: Tenant) -> None:
    key = access_key(tenant)
    body, headers = _signed(gateway, key, DESCRIBE)
    status, text = _send(gateway, body, headers)
    assert status == 200 and "<DescribeInstancesResponse" in text

    cases = {
        "wrong secret": (
            _signed(gateway, AccessKey(key.key_id, "x" * 40), DESCRIBE),
            403,
            "SignatureDoesNotMatch",
        ),
        "unknown key": (
            _signed(gateway, AccessKey("KUMOAAAAAAAAAAAAAAAA", "x"), DESCRIBE),
            401,
            "AuthFailure",
        ),
        "tampered body": (
            (body.replace(b"Describe", b"Terminate"), headers),
            403,
            "SignatureDoesNotMatch",
        ),
        "tampered header": (
            (body, {**headers, "X-Amz-Date": "20200101T000000Z"}),
            400,
            "RequestExpired",
        ),
        "expired": (
            _signed(gateway, key, DESCRIBE, datetime.now(UTC) - timedelta(minutes=20)),
            400,
            "RequestExpired",
        ),
        "from the future": (
            _signed(gateway, key, DESCRIBE, datetime.now(UTC) + timedelta(minutes=20)),
            400,
            "RequestExpired",
        ),
        "unsigned": (
            (body, {"Content-Type": headers["Content-Type"]}),
            401,
            "MissingAuthenticationToken",
        ),
    }
    for name, ((case_body, case_headers), status_expected, code) in cases.items():
        status, text = _send(gateway, case_body, case_headers)
        assert (status, _error_code(text)) == (status_expected, code), (name, text)
        assert "<RequestID>" in text

    host_tampered = {**headers, "Content-Type": "text/plain"}  # a signed header changed
    status, text = _send(gateway, body, host_tampered)
    assert _error_code(text) == "SignatureDoesNotMatch"

    # A mutating request signed once is refused the second time; a read may repeat.
    body, headers = _signed(gateway, key, TERMINATE)
    first = _send(gateway, body, headers)
    assert _error_code(first[1]) == "InvalidInstanceID.NotFound"
    replayed = _send(gateway, body, headers)
    assert (replayed[0], _error_code(replayed[1])) == (401, "AuthFailure")
    body, headers = _signed(gateway, key, DESCRIBE)
    assert _send(gateway, body, headers)[0] == 200
    assert _send(gateway, body, headers)[0] == 200


def test_deleted_access_key_stops_at_once(gateway: str, tenant: Tenant) -> None:
    key = access_key(tenant)
    ec2 = ec2_client(gateway, key)
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    tenant.stubs["member"].identity.DeleteAccessKey(
        iapi.DeleteAccessKeyRequest(name=f"users/{tenant.users['member']}/accessKeys/{key.key_id}")
    )
    assert _code(ec2.describe_key_pairs) == "AuthFailure"


def _presigned(url: str, key: AccessKey, expires: int, when: datetime | None = None) -> str:
    request = AWSRequest(method="GET", url=url + "/?" + DESCRIBE)
    signer = SigV4QueryAuth(Credentials(key.key_id, key.secret), "ec2", REGION, expires=expires)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when or datetime.now(UTC)):
        signer.add_auth(request)
    return str(request.url)


def test_presigned_requests(gateway: str, tenant: Tenant) -> None:
    key = access_key(tenant)
    url = _presigned(gateway, key, 300)
    status, text = _send(url, b"", {}, method="GET")
    assert status == 200 and "<DescribeInstancesResponse" in text
    status, text = _send(url, b"", {}, method="GET")
    assert (status, _error_code(text)) == (401, "AuthFailure")  # single use
    old = _presigned(gateway, key, 60, datetime.now(UTC) - timedelta(minutes=5))
    status, text = _send(old, b"", {}, method="GET")
    assert (status, _error_code(text)) == (400, "RequestExpired")
    long_ago = _presigned(gateway, key, 3600, datetime.now(UTC) - timedelta(minutes=30))
    assert _send(long_ago, b"", {}, method="GET")[0] == 200  # within its X-Amz-Expires
    forged = _presigned(gateway, AccessKey(key.key_id, "wrong"), 300)
    assert _error_code(_send(forged, b"", {}, method="GET")[1]) == "SignatureDoesNotMatch"


def test_bad_input_is_never_a_500(gateway: str, tenant: Tenant) -> None:
    key = access_key(tenant)
    cases = {
        "Action=NoSuchThing&Version=2016-11-15": "InvalidAction",
        "Version=2016-11-15": "MissingAction",
        "Action=CreateInternetGateway&Version=2016-11-15": "UnsupportedOperation",
        "Action=RunInstances&Version=2016-11-15&MinCount=abc&MaxCount=1": "InvalidParameterValue",
        "Action=RunInstances&Version=2016-11-15&MaxCount=1": "MissingParameter",
        "Action=DescribeInstances&Version=2016-11-15&Bogus=1": "UnknownParameter",
        "Action=DescribeInstances&Version=2016-11-15&InstanceId.x=1": "UnknownParameter",
        "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=vol-1": (
            "InvalidInstanceID.Malformed"
        ),
        "Action=DescribeInstances&Version=2016-11-15&MaxResults=2": "InvalidParameterValue",
        "Action=DescribeInstances&Version=2016-11-15&NextToken=garbage": "InvalidParameterValue",
        "Action=DescribeInstances&Version=2016-11-15&DryRun=maybe": "InvalidParameterValue",
        "Action=ImportKeyPair&Version=2016-11-15&KeyName=k&PublicKeyMaterial=%%%": (
            "InvalidParameterValue"
        ),
        "Action=DescribeInstances&Version=2016-11-15&%zz=%": "UnknownParameter",
        "Action=CreateTags&Version=2016-11-15&ResourceId.1=i-x&Tag.1.Value=v": "MissingParameter",
        "Action=DeleteTags&Version=2016-11-15&ResourceId.1=i-x&Tag.1.Value=v": "MissingParameter",
        "Action=DescribeInstances&Version=2016-11-15&Filter.1.Value.1=v": "InvalidParameterValue",
    }
    for body, code in cases.items():
        signed_body, headers = _signed(gateway, key, body)
        status, text = _send(gateway, signed_body, headers)
        assert 400 <= status < 500 and _error_code(text) == code, (body, text)
    raw = b"Action=DescribeInstances&\xff\xfe"
    request = AWSRequest(method="POST", url=gateway + "/", data=raw)
    SigV4Auth(Credentials(key.key_id, key.secret), "ec2", REGION).add_auth(request)
    status, text = _send(gateway, raw, dict(request.headers.items()))
    assert status == 400 and _error_code(text) == "InvalidParameterValue"


# Odd values for each input member of every implemented action, by the member's type.
ODD_TEXT = ("", "zz", "x" * 1000, "i-zz", "-1", "%00", "é")
ODD_VALUES = {
    "integer": ("-1", "0", "99999999999", "2147483648", "x"),
    "boolean": ("x",),
    "blob": ("", "zz", base64.b64encode(b"ssh-made-up AAAA").decode()),  # (text, no key)
}


def _scalar_members(shape: StructureShape) -> list[tuple[str, str]]:
    """(wire name, type) of the shape's scalar members, down to list elements and members of
    structures one level deep (`Filter.1.Name`, `Filter.1.Value.1`, `Placement.Tenancy`)."""
    found: list[tuple[str, str]] = []
    for name, member in shape.members.items():
        wire = query.wire_name(shape, name)
        if isinstance(member, ListShape):
            wire, member = f"{wire}.1", member.member
        if not isinstance(member, StructureShape):
            found.append((wire, member.type_name))
            continue
        for inner_name, inner in member.members.items():
            inner_wire = f"{wire}.{query.wire_name(member, inner_name)}"
            if isinstance(inner, ListShape):
                inner_wire, inner = f"{inner_wire}.1", inner.member
            if not isinstance(inner, StructureShape):
                found.append((inner_wire, inner.type_name))
    return found


def test_every_action_refuses_odd_values_without_a_500(gateway: str, tenant: Tenant) -> None:
    """Each implemented action, with its required members given, and then each scalar
    member in turn given each odd value of its type: every answer is below 500, and every
    refusal an EC2 error document."""
    key = access_key(tenant)
    broken = []
    for action in HANDLERS:
        shape = model.operation(action).input_shape  # type: ignore[union-attr]
        required: dict[str, str] = {}
        for name in shape.required_members if shape else ():
            member = shape.members[name]
            wire = query.wire_name(shape, name) + (".1" if isinstance(member, ListShape) else "")
            required[wire] = "1" if member.type_name == "integer" else "zz"
        cases: list[dict[str, str]] = [{}]
        for wire, kind in _scalar_members(shape) if shape else ():
            cases.extend({wire: value} for value in ODD_VALUES.get(kind, ODD_TEXT))
        for case in cases:
            fields = {"Action": action, "Version": model.API_VERSION, **required, **case}
            body = urllib.parse.urlencode(fields)
            status, text = _send(gateway, *_signed(gateway, key, body))
            if status >= 500 or (status >= 400 and "<Code>" not in text):
                broken.append(f"{body[:200]} -> {status} {text[:200]}")
    assert not broken, "\n".join(broken[:40])


def _signature_request(key: AccessKey, body_text: str) -> iapi.AuthenticateSignatureRequest:
    """The AuthenticateSignature request the gateway makes for `body_text` signed now."""
    body, headers = _signed("http://kumo.test", key, body_text)
    lowered = {k.lower(): [v] for k, v in headers.items()}
    lowered["host"] = ["kumo.test"]
    signed = sigv4.signed_request("POST", "/", "", lowered, body, datetime.now(UTC))
    return iapi.AuthenticateSignatureRequest(
        access_key_id=signed.access_key_id,
        credential_scope=signed.credential_scope,
        request_time=signed.request_time,
        canonical_request=signed.canonical_request,
        signature=signed.signature,
    )


def test_authenticate_signature_rpc(channel: grpc.Channel, tenant: Tenant) -> None:
    """The identity RPC itself (PUBLIC): bad times and scopes are refused there too."""
    anonymous = Stubs(channel)
    key = access_key(tenant)
    now = datetime.now(UTC)
    request = iapi.AuthenticateSignatureRequest(
        access_key_id=key.key_id,
        credential_scope=f"{now:%Y%m%d}/{REGION}/ec2/aws4_request",
        request_time=f"{now:%Y%m%dT%H%M%SZ}",
        canonical_request="POST\n/\n\nhost:x\n\nhost\n" + "0" * 64,
        signature="0" * 64,
    )
    code, status = rpc_error(lambda: anonymous.identity.AuthenticateSignature(request))
    assert code == grpc.StatusCode.UNAUTHENTICATED and status is not None

    token = anonymous.identity.AuthenticateSignature(_signature_request(key, DESCRIBE)).token
    assert token.project == tenant.name and token.user == f"users/{tenant.users['member']}"
    lifetime = token.expire_time.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(minutes=14) < lifetime <= timedelta(minutes=15)
    project = Stubs(channel, token.token).identity.GetProject(
        iapi.GetProjectRequest(name=tenant.name)
    )
    assert project.name == tenant.name
    # The key's next signature is checked against the kept signing key and gets the same
    # token; a wrong one is still refused; a revoked token is not handed out again.
    second = _signature_request(key, DESCRIBE + "&MaxResults=5")
    assert anonymous.identity.AuthenticateSignature(second).token.token == token.token
    forged = iapi.AuthenticateSignatureRequest()
    forged.CopyFrom(second)
    forged.signature = ("1" if second.signature[0] == "0" else "0") + second.signature[1:]
    code, status = rpc_error(lambda: anonymous.identity.AuthenticateSignature(forged))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "does not match" in status.message  # type: ignore[union-attr]
    Stubs(channel, token.token).identity.RevokeToken(iapi.RevokeTokenRequest(token=token.token))
    third = anonymous.identity.AuthenticateSignature(_signature_request(key, DESCRIBE)).token
    assert third.token != token.token
    old = iapi.AuthenticateSignatureRequest()
    old.CopyFrom(request)
    old.request_time = "20200101T000000Z"
    old.credential_scope = f"20200101/{REGION}/ec2/aws4_request"
    assert rpc_error(lambda: anonymous.identity.AuthenticateSignature(old))[0] == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    skewed = iapi.AuthenticateSignatureRequest()
    skewed.CopyFrom(request)
    skewed.credential_scope = f"20200101/{REGION}/ec2/aws4_request"
    assert rpc_error(lambda: anonymous.identity.AuthenticateSignature(skewed))[0] == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


# What an implemented action answers without parameters, when not MissingParameter.
NO_PARAMETERS = {"AllocateAddress": "InsufficientAddressCapacity"}  # no external network


def test_every_model_operation_answers_without_a_500(gateway: str, tenant: Tenant) -> None:
    """Each of the model's operations, called with no parameters: the implemented ones
    answer (or name a missing parameter), every other one is UnsupportedOperation."""
    key = access_key(tenant)
    implemented = set(HANDLERS)
    for action in model.ec2_model().operation_names:
        body, headers = _signed(gateway, key, f"Action={action}&Version=2016-11-15")
        status, text = _send(gateway, body, headers)
        assert status < 500, (action, text)
        if action not in implemented:
            assert (status, _error_code(text)) == (400, "UnsupportedOperation"), action
        elif status != 200:
            expected = NO_PARAMETERS.get(action, "MissingParameter")
            assert _error_code(text) == expected, (action, text)
