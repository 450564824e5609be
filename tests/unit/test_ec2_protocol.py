"""The EC2 protocol layer against botocore itself: what botocore's client serializes, our
parser reads back; what we render, botocore's EC2 parser (the real client's view) reads as
the result we meant. SigV4 canonical requests equal botocore's signer's."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from kumo.gateway.aws import model, query, sigv4, xml
from kumo.gateway.aws.errors import Ec2Error
from kumo.gateway.aws.replay import ReplayCache
from kumo.server.services.identity.signatures import signing_key, string_to_sign

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)

REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "RunInstances",
        {
            "ImageId": "ami-1",
            "MinCount": 1,
            "MaxCount": 3,
            "SecurityGroupIds": ["sg-1", "sg-2"],
            "Placement": {"AvailabilityZone": "z1"},
            "ClientToken": "tok",
            "DryRun": False,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b c&d=e"}]}
            ],
            "BlockDeviceMappings": [{"DeviceName": "/dev/sda", "Ebs": {"VolumeSize": 8}}],
        },
    ),
    (
        "DescribeInstances",
        {
            "Filters": [{"Name": "tag:Name", "Values": ["x", "y*"]}],
            "MaxResults": 5,
            "NextToken": "abc==",
        },
    ),
    ("ImportKeyPair", {"KeyName": "k", "PublicKeyMaterial": b"ssh-ed25519 AAAA"}),
    (
        "DescribeSpotPriceHistory",
        {"StartTime": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "InstanceTypes": ["m5.large"]},
    ),
    ("CreateTags", {"Resources": ["i-1"], "Tags": [{"Key": "k", "Value": ""}]}),
]


@pytest.mark.parametrize(("action", "params"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_parser_reads_what_botocore_writes(action: str, params: dict[str, Any]) -> None:
    operation = model.operation(action)
    assert operation is not None
    body = create_serializer("ec2").serialize_to_request(params, operation)["body"]
    fields = [(k, str(v)) for k, v in body.items()]
    assert query.parse(fields, operation.input_shape) == params


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ([("MaxCount", "1")], "MissingParameter"),
        ([("MinCount", "x"), ("MaxCount", "1"), ("ImageId", "a")], "InvalidParameterValue"),
        ([("MinCount", "1"), ("MaxCount", "1"), ("Nope", "1")], "UnknownParameter"),
        ([("MinCount", "1"), ("MaxCount", "1"), ("SecurityGroupId.0", "s")], "UnknownParameter"),
        ([("MinCount", "1"), ("MaxCount", "1"), ("DryRun", "yes")], "InvalidParameterValue"),
        ([("MinCount", "1"), ("MaxCount", "1"), ("ImageId.x", "a")], "UnknownParameter"),
    ],
)
def test_parser_errors(fields: list[tuple[str, str]], code: str) -> None:
    operation = model.operation("RunInstances")
    assert operation is not None
    with pytest.raises(Ec2Error) as info:
        query.parse(fields, operation.input_shape)
    assert info.value.code == code and info.value.status == 400


def test_list_order_follows_indexes_not_arrival() -> None:
    operation = model.operation("TerminateInstances")
    assert operation is not None
    fields = [("InstanceId.10", "c"), ("InstanceId.2", "b"), ("InstanceId.1", "a")]
    assert query.parse(fields, operation.input_shape) == {"InstanceIds": ["a", "b", "c"]}


def _botocore_view(action: str, body: bytes, status: int = 200) -> dict[str, Any]:
    operation = model.operation(action)
    assert operation is not None
    response = {"body": body, "headers": {}, "status_code": status}
    parsed: dict[str, Any] = create_parser("ec2").parse(response, operation.output_shape)
    return parsed


def test_botocore_reads_our_xml() -> None:
    operation = model.operation("DescribeInstances")
    assert operation is not None
    launched = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    result = {
        "Reservations": [
            {
                "ReservationId": "r-1",
                "OwnerId": "p",
                "Groups": [],
                "Instances": [
                    {
                        "InstanceId": "i-1",
                        "State": {"Code": 16, "Name": "running"},
                        "LaunchTime": launched,
                        "Tags": [{"Key": "a<b", "Value": "&"}],
                        "EbsOptimized": False,
                        "AmiLaunchIndex": 0,
                    }
                ],
            }
        ],
        "NextToken": "n",
    }
    parsed = _botocore_view("DescribeInstances", xml.render(operation, result, "req-9"))
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"
    instance = parsed["Reservations"][0]["Instances"][0]
    assert instance["LaunchTime"] == launched
    assert instance["Tags"] == [{"Key": "a<b", "Value": "&"}]
    assert instance["EbsOptimized"] is False and instance["State"]["Code"] == 16
    assert parsed["NextToken"] == "n"


def test_botocore_reads_blobs_and_empty_outputs() -> None:
    operation = model.operation("RebootInstances")
    assert operation is not None
    assert _botocore_view("RebootInstances", xml.render(operation, {}, "r"))["ResponseMetadata"][
        "RequestId"
    ] == ("r")


def test_error_envelope() -> None:
    body = xml.render_error("AuthFailure", "bad <key> & more", "req-1")
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>')
    parsed = _botocore_view("DescribeInstances", body, 401)
    assert parsed["Error"] == {"Code": "AuthFailure", "Message": "bad <key> & more"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"


# --------------------------------------------------------------------------- SigV4

CREDENTIALS = Credentials("KUMOAAAAAAAAAAAAAAAA", "secret-of-the-key")


def _headers(request: AWSRequest) -> dict[str, list[str]]:
    """The headers as sent: botocore signs `host` from the URL; the HTTP client adds it."""
    headers = {k.lower(): [v] for k, v in request.headers.items()}
    headers["host"] = [urlsplit(request.url).netloc]
    return headers


def _check(signed: sigv4.SignedRequest) -> bool:
    date, region, service, _ = signed.credential_scope.split("/")
    key = signing_key(CREDENTIALS.secret_key, date, region, service)
    text = string_to_sign(signed.request_time, signed.credential_scope, signed.canonical_request)
    expected = hmac.new(key, text.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signed.signature)


def _header_signed(body: bytes, path: str = "/") -> AWSRequest:
    request = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8773{path}",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(CREDENTIALS, "ec2", "kumo-1").add_auth(request)
    return request


def test_header_signature_round_trip() -> None:
    body = b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AName"
    request = _header_signed(body)
    now = datetime.now(UTC)
    signed = sigv4.signed_request("POST", "/", "", _headers(request), body, now)
    assert signed.access_key_id == CREDENTIALS.access_key and not signed.presigned
    assert _check(signed)
    tampered = sigv4.signed_request("POST", "/", "", _headers(request), body + b"&x=1", now)
    assert not _check(tampered)


def test_presigned_round_trip_and_expiry() -> None:
    request = AWSRequest(
        method="GET", url="http://127.0.0.1:8773/?Action=DescribeRegions&Version=2016-11-15"
    )
    SigV4QueryAuth(CREDENTIALS, "ec2", "kumo-1", expires=60).add_auth(request)
    parts = urlsplit(request.url)
    headers = {"host": ["127.0.0.1:8773"]}
    now = datetime.now(UTC)
    signed = sigv4.signed_request("GET", parts.path, parts.query, headers, b"", now)
    assert signed.presigned and _check(signed)
    with pytest.raises(Ec2Error) as info:
        sigv4.signed_request(
            "GET", parts.path, parts.query, headers, b"", now + timedelta(minutes=2)
        )
    assert info.value.code == "RequestExpired"


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MissingAuthenticationToken"),
        ({"authorization": ["AWS4-HMAC-SHA1 Credential=x"]}, "AuthFailure"),
        ({"authorization": ["AWS4-HMAC-SHA256 Credential=a/b/c/d/e"]}, "IncompleteSignature"),
        (
            {
                "authorization": [
                    "AWS4-HMAC-SHA256 Credential=K/20261125/r/ec2/aws4_request, "
                    "SignedHeaders=host, Signature=00"
                ],
                "x-amz-date": ["20261125T110000Z"],
            },
            "RequestExpired",
        ),
    ],
)
def test_signature_errors(headers: dict[str, list[str]], code: str) -> None:
    with pytest.raises(Ec2Error) as info:
        sigv4.signed_request("POST", "/", "", headers, b"", NOW)
    assert info.value.code == code


def test_replay_cache_refuses_reuse_until_expiry_and_stays_bounded() -> None:
    cache = ReplayCache(capacity=2)
    until = NOW + timedelta(minutes=15)
    assert cache.first_use("a", until, NOW)
    assert not cache.first_use("a", until, NOW + timedelta(minutes=1))
    assert cache.first_use("a", until, NOW + timedelta(minutes=16))  # expired: forgotten
    assert cache.first_use("b", until + timedelta(minutes=20), NOW + timedelta(minutes=16))
    assert cache.first_use("c", until + timedelta(minutes=20), NOW + timedelta(minutes=16))
    assert len(cache._until) == 2
