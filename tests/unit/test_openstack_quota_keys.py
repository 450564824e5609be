"""The quota key tables of the OpenStack dialects (kumo.gateway.openstack.quotas)."""

from __future__ import annotations

import pytest

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.nova.quota_sets import KEYS, KEYS_BEFORE_2_36
from kumo.gateway.openstack.quotas import below_usage
from kumo.identity.v1 import resources_pb2 as ipb

QUOTA = ipb.Quota(
    limits=[
        ipb.QuotaLimit(resource="instances", limit=10, in_use=4),
        ipb.QuotaLimit(resource="vcpus", limit=-1, in_use=8),
        ipb.QuotaLimit(resource="ram_mib", limit=2048, in_use=1024),
    ]
)


def test_limits_show_counted_and_fixed_keys_and_unlimited_for_missing_resources() -> None:
    shown = KEYS.limits(QUOTA)
    assert (shown["instances"], shown["cores"], shown["ram"]) == (10, -1, 2048)
    assert (shown["key_pairs"], shown["metadata_items"]) == (-1, 64)
    # A resource the quota does not hold (networks here) is unlimited.
    assert KEYS_BEFORE_2_36.limits(QUOTA)["networks"] == -1
    assert "networks" not in shown


def test_usage_has_limit_use_and_nothing_reserved() -> None:
    usage = KEYS.usage(QUOTA, used="in_use")
    assert usage["instances"] == {"limit": 10, "in_use": 4, "reserved": 0}
    assert usage["key_pairs"] == {"limit": -1, "in_use": 0, "reserved": 0}


def test_wanted_maps_keys_to_resources_and_accepts_integer_strings() -> None:
    wanted = KEYS.wanted({"instances": "5", "cores": -1, "force": True}, ignored=("force",))
    assert wanted == {"instances": 5, "vcpus": -1}


@pytest.mark.parametrize(
    "body",
    [
        {"instances": -2},
        {"instances": "-2"},
        {"instances": "five"},
        {"instances": "--2"},
        {"instances": 2**70},
        {"instances": "٣"},  # a digit, but not an ASCII one
        {"instances": 1.0},
        {"instances": None},
        {"instances": False},
        {"key_pairs": 3},
        {"networks": 3},  # a key of older microversions only
        {"unknown": 3},
    ],
)
def test_wanted_refuses_bad_keys_and_values(body: dict[str, object]) -> None:
    with pytest.raises(RpcFailure):
        KEYS.wanted(body, ignored=())


def test_below_usage_names_the_first_limit_under_use() -> None:
    assert below_usage(KEYS, QUOTA, {"instances": 4, "ram_mib": 1024}) is None
    assert below_usage(KEYS, QUOTA, {"vcpus": -1}) is None
    reason = below_usage(KEYS, QUOTA, {"instances": 3})
    assert reason is not None and "instances" in reason and "used and reserved 4" in reason
