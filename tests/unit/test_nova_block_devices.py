"""Nova's block_device_mapping_v2 read onto a Kumo instance's boot disk and the other
volumes it is made with."""

from __future__ import annotations

from typing import Any

import pytest

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.nova.block_devices import BootDisk, ExtraVolume, read_mappings

DOOMED = {"delete_on_termination": 1}
IMAGE = {"boot_index": 0, "uuid": "img", "source_type": "image"}
VOLUME = {"boot_index": 0, "uuid": "vol", "source_type": "volume", "destination_type": "volume"}
OTHER = {"boot_index": -1, "uuid": "data", "source_type": "volume", "destination_type": "volume"}
BLANK = {"source_type": "blank", "destination_type": "volume", "volume_size": 5}


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
        (  # an ephemeral disk of no size: the flavor's, none
            [
                {**IMAGE, "destination_type": "local"},
                {**BLANK, "destination_type": "local", "volume_size": None},
            ],
            BootDisk(image_uid="img"),
        ),
        (  # an image mapping beside the volume names what the volume holds
            [{**IMAGE, "destination_type": "local"}, VOLUME],
            BootDisk(volume_uid="vol", image_uid="img"),
        ),
        (
            [{**IMAGE, "destination_type": "volume", "volume_size": 2, "volume_type": "fast"}],
            BootDisk(image_uid="img", new_volume_gib=2, volume_type="fast"),
        ),
        (  # the other volumes, in order: existing, new empty, copies of snapshots
            [
                {**IMAGE, "destination_type": "local"},
                {**OTHER, "device_name": "/dev/vdc"},
                {**BLANK, **DOOMED, "volume_type": "fast"},
                {**OTHER, "source_type": "snapshot", "uuid": "snap", "boot_index": None},
            ],
            BootDisk(
                image_uid="img",
                extra=(
                    ExtraVolume(volume_uid="data", device_name="/dev/vdc"),
                    ExtraVolume(size_gib=5, volume_type="fast", delete_on_termination=True),
                    ExtraVolume(snapshot_uid="snap"),
                ),
            ),
        ),
        (
            [VOLUME, {**BLANK, "boot_index": 1}],
            BootDisk(volume_uid="vol", extra=(ExtraVolume(size_gib=5),)),
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
        ([{**VOLUME, "volume_type": "fast"}], "volume_type is for the volumes made"),
        ([{**OTHER, "volume_type": "fast"}], "volume_type is for the volumes made"),
        ([{**BLANK, "volume_size": 0}], "needs a volume_size"),
        ([{**OTHER, "source_type": "image"}], "new empty ones and copies"),
        ([{**OTHER, "source_type": "snapshot", "uuid": None}], "needs the snapshot's uuid"),
        (  # what `openstack server create --swap 512` sends
            [{**BLANK, "destination_type": "local", "guest_format": "swap", "volume_size": 512}],
            "Swap drive requested is larger",
        ),
        ([{**BLANK, "destination_type": "local"}], "Ephemeral disks requested are larger"),
        ([{**OTHER, "source_type": "image", "destination_type": "local"}], "image to local"),
        ([{**OTHER, "device_name": 5}], "Invalid device_name"),
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
