"""The compiled EC2 XML writers (aws/xml.py), read back by botocore's own EC2 parser: what
a client gets must be exactly the result the handler meant, whatever the text holds."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.model import ListShape
from botocore.parsers import create_parser

from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import model, xml
from kumo.gateway.aws.backend import Backend, Caller, Memory
from kumo.gateway.aws.operations.instance_views import reservation_item


def _round_trip(action: str, result: dict[str, Any]) -> dict[str, Any]:
    operation = model.operation(action)
    assert operation is not None
    body = xml.render(operation, result, "req-1")
    ET.fromstring(body)  # well-formed on its own, not only to botocore
    response = {"body": body, "headers": {}, "status_code": 200}
    parsed: dict[str, Any] = create_parser("ec2").parse(response, operation.output_shape)
    assert parsed.pop("ResponseMetadata")["RequestId"] == "req-1"
    return parsed


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        "",
        "a & b < c > d",
        "&amp; is not unescaped twice",
        "quotes ' and \" stay",
        "lines\nand\ttabs",
        "a carriage\r\nreturn",
        "unicode é 雲 🌩",
        "\u00a0non-breaking and \u2028 separators",
        "]]> ends no CDATA",
    ],
)
def test_text_comes_back_unchanged(value: str) -> None:
    parsed = _round_trip("DescribeKeyPairs", {"KeyPairs": [{"KeyName": value}]})
    assert parsed == {"KeyPairs": [{"KeyName": value}]}


def test_characters_xml_cannot_carry_become_replacement_characters() -> None:
    name = "a\x00b\x1bc\ufffed<\x07 \udc80"  # the last: a lone surrogate (surrogateescape)
    parsed = _round_trip("DescribeKeyPairs", {"KeyPairs": [{"KeyName": name}]})
    assert parsed["KeyPairs"][0]["KeyName"] == "a\ufffdb\ufffdc\ufffdd<\ufffd \ufffd"


def test_nested_structures_lists_numbers_booleans_and_timestamps() -> None:
    launched = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    instance = {
        "InstanceId": "i-1",
        "State": {"Code": 16, "Name": "running"},
        "LaunchTime": launched,
        "EbsOptimized": False,
        "EnaSupport": True,
        "AmiLaunchIndex": 0,
        "Placement": {"AvailabilityZone": "z1"},
        "Tags": [{"Key": "a", "Value": ""}, {"Key": "b", "Value": "2"}],
        "SecurityGroups": [],
    }
    result = {
        "Reservations": [
            {"ReservationId": "r-1", "OwnerId": "p", "Groups": [], "Instances": [instance]},
            {"ReservationId": "r-2", "OwnerId": "p", "Instances": []},
        ]
    }
    parsed = _round_trip("DescribeInstances", result)
    got = parsed["Reservations"][0]["Instances"][0]
    # EC2's timestamps carry milliseconds.
    assert got.pop("LaunchTime") == launched.replace(microsecond=678000)
    del instance["LaunchTime"]
    assert got == instance
    assert parsed["Reservations"][0]["Groups"] == []
    assert parsed["Reservations"][1] == {"ReservationId": "r-2", "OwnerId": "p", "Instances": []}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            datetime(2026, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 5, 6, 5, 8, 9, tzinfo=UTC),
        ),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1.5, datetime(1970, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)),
        (datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59)),
    ],
)
def test_timestamps_are_utc(given: Any, expected: datetime) -> None:
    parsed = _round_trip("CreateSnapshot", {"SnapshotId": "snap-1", "StartTime": given})
    assert parsed["StartTime"].replace(tzinfo=None) == expected.replace(tzinfo=None)


def test_unknown_members_and_none_values_are_left_out() -> None:
    parsed = _round_trip(
        "CreateKeyPair", {"KeyName": "k", "KeyFingerprint": None, "NotInTheShape": "x"}
    )
    assert parsed == {"KeyName": "k"}


def test_blobs_are_base64() -> None:
    raw = b"\x00policy<&>\xff"
    result = {"BundleTask": {"BundleId": "b-1", "Storage": {"S3": {"UploadPolicy": raw}}}}
    parsed = _round_trip("BundleInstance", result)
    assert parsed["BundleTask"]["Storage"]["S3"]["UploadPolicy"] == raw


def test_every_output_shape_of_the_model_compiles() -> None:
    """No EC2 answer needs a map or a flattened list (which are not rendered)."""
    ec2 = model.ec2_model()
    for name in ec2.operation_names:
        operation = model.operation(name)
        assert operation is not None
        xml.compile_operation(operation)


def test_error_envelope_escapes_every_part() -> None:
    body = xml.render_error("Code<&>", "bad \x00 <key>", "req&1")
    root = ET.fromstring(body)
    assert root.findtext("Errors/Error/Code") == "Code<&>"
    assert root.findtext("Errors/Error/Message") == "bad \ufffd <key>"
    assert root.findtext("RequestID") == "req&1"


def test_a_fragment_is_written_as_the_item_it_stands_for() -> None:
    operation = model.operation("DescribeInstances")
    assert operation is not None and operation.output_shape is not None
    shape = operation.output_shape.members["Reservations"]
    assert isinstance(shape, ListShape)
    items = [
        {
            "ReservationId": f"r-{n}",
            "OwnerId": "p",
            "Groups": [],
            "Instances": [{"InstanceId": "i"}],
        }
        for n in range(3)
    ]
    plain = xml.render(operation, {"Reservations": items}, "req")
    mixed = [items[0], xml.item_fragment(shape, items[1]), items[2]]
    assert xml.render(operation, {"Reservations": mixed}, "req") == plain
    assert _round_trip("DescribeInstances", {"Reservations": mixed})["Reservations"] == items


def test_described_instances_are_written_once_per_distinct_message() -> None:
    memory = Memory()
    backend = cast(Backend, SimpleNamespace(memory=memory))
    mine, theirs = Caller("p1", ()), Caller("p2", ())
    instance = cpb.Instance(
        name="projects/p1/zones/z1/instances/web", flavor="flavors/f", image="projects/p1/images/i"
    )
    instance.state = cpb.Instance.STATE_RUNNING
    first = reservation_item(backend, mine, instance, {})
    assert reservation_item(backend, mine, instance, {}) is first
    assert "<ownerId>p1</ownerId>" in first and "<name>running</name>" in first
    assert "<ownerId>p2</ownerId>" in reservation_item(backend, theirs, instance, {})
    instance.state = cpb.Instance.STATE_STOPPED
    assert "<name>stopped</name>" in reservation_item(backend, mine, instance, {})
    # A key pair's EC2 name is part of what was written (key_pair_names.py).
    key = "projects/p1/keyPairs/kp-" + "0" * 40
    instance.key_pairs.append(key)
    assert "<keyName>kp-" in reservation_item(backend, mine, instance, {})
    named = reservation_item(backend, mine, instance, {key: "My Key"})
    assert "<keyName>My Key</keyName>" in named
    assert len(memory.reservations) == 5
