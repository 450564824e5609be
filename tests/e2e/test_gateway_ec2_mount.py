"""The EC2 dialect as the gateway serves it (`kumo up`): boto3 and the aws CLI with
`--endpoint-url http://HOST:PORT/aws` sign the prefixed path, and the gateway checks it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.cloud import Tenant
from tests.support.ec2 import access_key, aws_cli, cli_json, ec2_client
from tests.support.gateway import GatewayThread

# These runs test the clients against the gateway's dialects; both databases are
# covered beneath the gateway by the integration tests, so SQLite only here.
pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)


def test_boto3_and_aws_cli_under_the_prefix(gateway: GatewayThread, tenant: Tenant) -> None:
    """DescribeRegions and DescribeInstances succeed with a valid signature over `/aws`;
    a wrong secret is refused with EC2's error code, not another dialect's."""
    key = access_key(tenant)
    client = ec2_client(f"{gateway.url}/aws", key)
    assert isinstance(client.describe_regions()["Regions"], list)
    assert client.describe_instances()["Reservations"] == []
    listed = cli_json(aws_cli(f"{gateway.url}/aws", key, "describe-key-pairs"))
    assert listed == {"KeyPairs": []}

    forged = ec2_client(f"{gateway.url}/aws", type(key)(key.key_id, "wrong-secret"))
    with pytest.raises(ClientError) as refused:
        forged.describe_regions()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
