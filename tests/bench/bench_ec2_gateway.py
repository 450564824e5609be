"""The EC2 gateway's own CPU per call, without the API server: load-independent figures.

Run from the repository root:

    .venv/bin/python -m tests.bench.bench_ec2_gateway                 # 500 instances
    .venv/bin/python -m tests.bench.bench_ec2_gateway --instances 100 --describes 50

A boto3 client whose requests go (botocore's `before-send` hook) straight into the
gateway's ASGI app in this process: SigV4 canonical request, form parsing by the model,
the handler, XML rendering, the ASGI response; the gRPC stubs are replaced by a scripted
API (`ScriptedApi`: canned answers, no network, no database), so what is timed is the
gateway's work alone. Phases as in bench_ec2.py: RunInstances xN, DescribeInstances over
N xD, TerminateInstances xN; per call the process CPU time (`time.process_time`) of the
app's handling, p50 and mean, and the gRPC calls it made. botocore's parsing of the
answer (the client's side) is timed apart, for DescribeInstances. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config as BotoConfig
from botocore.parsers import create_parser
from google.longrunning import operations_pb2

from kumo.compute.v1 import compute_service_pb2 as capi
from kumo.compute.v1 import resources_pb2 as cpb
from kumo.gateway.aws import ids, model
from kumo.gateway.aws.app import Ec2App, create_app
from kumo.gateway.aws.backend import Caller, Memory
from kumo.image.v1 import image_service_pb2 as imapi
from kumo.image.v1 import resources_pb2 as impb
from kumo.topology.v1 import resources_pb2 as tpb
from kumo.topology.v1 import topology_service_pb2 as tapi

PROJECT = "bench"
IMAGE = f"projects/{PROJECT}/images/img"


class _Raw:
    """The raw body botocore reads an AWSResponse from."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def stream(self, **_kwargs: Any) -> Any:
        yield self.payload


class ScriptedApi:
    """The gateway's backend with canned gRPC answers: instances in a dict, running."""

    def __init__(self) -> None:
        self.memory = Memory()
        self.calls: Counter[str] = Counter()
        self.instances: dict[str, cpb.Instance] = {}
        self.compute = self.images = self.topology = self

    async def authenticate(self, _signed: Any) -> Caller:
        self.calls["AuthenticateSignature"] += 1
        return Caller(project=PROJECT, metadata=(("authorization", "Bearer t"),))

    async def ListZones(self, _request: Any, metadata: Any) -> Any:
        self.calls["ListZones"] += 1
        return tapi.ListZonesResponse(zones=[tpb.Zone(name="zones/z1")])

    async def ListImages(self, _request: Any, metadata: Any) -> Any:
        self.calls["ListImages"] += 1
        return imapi.ListImagesResponse(images=[impb.Image(name=IMAGE)])

    async def CreateInstance(self, request: Any, metadata: Any) -> Any:
        self.calls["CreateInstance"] += 1
        instance = cpb.Instance()
        instance.CopyFrom(request.instance)
        instance.name = f"{request.parent}/instances/{request.instance_id}"
        instance.hostname = request.instance_id
        instance.state = cpb.Instance.STATE_RUNNING
        instance.create_time.GetCurrentTime()
        self.instances[instance.name] = instance
        return operations_pb2.Operation(name="operations/x")

    async def GetInstance(self, request: Any, metadata: Any) -> Any:
        self.calls["GetInstance"] += 1
        return self.instances[request.name]

    async def DeleteInstance(self, request: Any, metadata: Any) -> Any:
        self.calls["DeleteInstance"] += 1
        del self.instances[request.name]
        return operations_pb2.Operation(name="operations/y", done=True)

    async def ListInstances(self, request: Any, metadata: Any) -> Any:
        self.calls["ListInstances"] += 1
        # As a gRPC client gets it: parsed from the wire.
        wire = capi.ListInstancesResponse(instances=list(self.instances.values()))
        return capi.ListInstancesResponse.FromString(wire.SerializeToString())


class Meter:
    """Sends botocore's requests into the app, timing the app's CPU per operation."""

    def __init__(self, app: Ec2App, api: ScriptedApi) -> None:
        self.app, self.api = app, api
        self.loop = asyncio.new_event_loop()
        self.cpu: dict[str, list[float]] = {}
        self.calls: dict[str, Counter[str]] = {}
        self.last_body = b""

    def send(self, request: Any, **_kwargs: Any) -> AWSResponse:
        url = urlsplit(request.url)
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        headers = [
            (k.lower().encode(), v if isinstance(v, bytes) else str(v).encode())
            for k, v in request.headers.items()
        ]
        headers.append((b"host", url.netloc.encode()))
        scope = {
            "type": "http",
            "method": request.method,
            "path": url.path or "/",
            "raw_path": (url.path or "/").encode(),
            "query_string": url.query.encode(),
            "headers": headers,
        }
        sent: list[Any] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def collect(message: Any) -> None:
            sent.append(message)

        action = dict(p.split("=", 1) for p in body.decode().split("&") if "=" in p)["Action"]
        before = Counter(self.api.calls)
        start = time.process_time()
        self.loop.run_until_complete(self.app(scope, receive, collect))
        self.cpu.setdefault(action, []).append(time.process_time() - start)
        made = Counter(self.api.calls)
        made.subtract(before)
        self.calls.setdefault(action, Counter()).update(made)
        self.last_body = sent[1]["body"]
        return AWSResponse(
            request.url,
            sent[0]["status"],
            {k.decode(): v.decode() for k, v in sent[0]["headers"]},
            _Raw(self.last_body),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_ec2_gateway")
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--describes", type=int, default=20)
    args = parser.parse_args(argv)
    api = ScriptedApi()
    app = create_app("127.0.0.1:1")
    app._backend = api  # type: ignore[assignment]
    meter = Meter(app, api)
    ec2 = boto3.client(
        "ec2",
        endpoint_url="http://ec2.bench.invalid",
        region_name="kumo-1",
        aws_access_key_id="KUMOBENCH",
        aws_secret_access_key="unused",
        config=BotoConfig(retries={"max_attempts": 1}),
    )
    ec2.meta.events.register("before-send.ec2", meter.send)
    image = ids.image_ec2_id(IMAGE)
    instance_ids = [
        ec2.run_instances(ImageId=image, InstanceType="small", MinCount=1, MaxCount=1)["Instances"][
            0
        ]["InstanceId"]
        for _ in range(args.instances)
    ]
    for _ in range(args.describes):
        ec2.describe_instances()
    described = meter.last_body
    operation = model.operation("DescribeInstances")
    assert operation is not None
    client_parser, response = create_parser("ec2"), {"body": described, "headers": {}}
    start = time.process_time()
    parsed = client_parser.parse({**response, "status_code": 200}, operation.output_shape)
    client_cpu = time.process_time() - start
    assert sum(len(r["Instances"]) for r in parsed["Reservations"]) == args.instances
    for instance_id in instance_ids:
        ec2.terminate_instances(InstanceIds=[instance_id])
    print(
        f"EC2 gateway CPU per call, in process, scripted API ({args.instances} instances, "
        f"DescribeInstances x{args.describes}); Python {sys.version.split()[0]}"
    )
    print()
    print("| call | calls | CPU p50 ms | CPU mean ms | gRPC calls per call |")
    print("|---|---|---|---|---|")
    for action, seconds in meter.cpu.items():
        per_call = ", ".join(
            f"{k} {v / len(seconds):g}" for k, v in meter.calls[action].items() if v
        )
        print(
            f"| {action} | {len(seconds)} | {1000 * statistics.median(seconds):.2f} "
            f"| {1000 * statistics.fmean(seconds):.2f} | {per_call} |"
        )
    print()
    print(
        f"botocore parsing one DescribeInstances answer ({len(described):,} bytes) "
        f"on the client: {1000 * client_cpu:.1f} ms CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
