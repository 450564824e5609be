"""Nova's block_device_mapping_v2 read onto a Kumo instance's boot disk."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.nova.block_devices import BootDisk, read_mappings

DOOMED = {"delete_on_termination": 1}
IMAGE = {"boot_index": 0, "uuid": "img", "source_type": "image"}
VOLUME = {"boot_index": 0, "uuid": "vol", "source_type": "volume", "destination_type": "volume"}


@pytest.mark.parametrize(
    ("mappings", "disk"),
    [
        (None, BootDisk()),
        ([{**IMAGE, "destination_type": "local"}], BootDisk(image_uid="img")),
        ([VOLUME], BootDisk(volume_uid="vol")),
        (
            [{**VOLUME, "delete_on_termination": True}],
            BootDisk(volume_uid="vol", delete_on_termination=True),
        ),
        (  # what `openstack server create --image --boot-from-volume 2` sends
            [{**IMAGE, "destination_type": "volume", "volume_size": 2}],
            BootDisk(image_uid="img", new_volume_gib=2),
        ),
        (
            [{**IMAGE, **DOOMED, "destination_type": "volume", "volume_size": "3"}],
            BootDisk(image_uid="img", new_volume_gib=3, delete_on_termination=True),
        ),
        (  # what `openstack server create --snapshot` sends
            [{**VOLUME, "source_type": "snapshot", "delete_on_termination": False}],
            BootDisk(snapshot_uid="vol"),
        ),
        (
            [{**VOLUME, **DOOMED, "source_type": "snapshot", "volume_size": 4}],
            BootDisk(snapshot_uid="vol", new_volume_gib=4, delete_on_termination=True),
        ),
        (  # an image mapping beside the volume names what the volume holds
            [{**IMAGE, "destination_type": "local"}, VOLUME],
            BootDisk(volume_uid="vol", image_uid="img"),
        ),
    ],
)
def test_boot_disks_kumo_serves(mappings: Any, disk: BootDisk) -> None:
    assert read_mappings(mappings) == disk


@pytest.mark.parametrize(
    ("mappings", "said"),
    [
        ("not a list", "must be a list"),
        ([{**IMAGE, "destination_type": "volume"}], "non-zero size"),
        ([{**IMAGE, "destination_type": "volume", "volume_size": 0}], "non-zero size"),
        ([{**IMAGE, "destination_type": "volume", "volume_size": "big"}], "volume_size"),
        ([{**VOLUME, "source_type": "blank"}], "existing volume or from a new one"),
        ([{**VOLUME, "source_type": "snapshot", "volume_size": -1}], "Invalid volume_size"),
        ([{**VOLUME, "volume_type": "fast"}], "default volume type"),
        ([{**VOLUME, "boot_index": 1}], "extra volumes"),
        ([VOLUME, VOLUME], "only one block device"),
        ([{**VOLUME, "uuid": ""}], "needs the volume's uuid"),
        ([{**VOLUME, "destination_type": "tape"}], "Invalid destination_type"),
        ([{**VOLUME, "boot_index": "first"}], "Invalid boot_index"),
    ],
)
def test_what_kumo_cannot_serve_is_a_400(mappings: Any, said: str) -> None:
    with pytest.raises(RpcFailure) as caught:
        read_mappings(mappings)
    assert said in str(caught.value.message)
