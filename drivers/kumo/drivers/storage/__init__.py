"""Volume drivers: `base.VolumeDriver` (the contract), `rbd` (Ceph RBD), `qcow2` (local files
made with qemu-img), `fake` (in memory, for scale tests), and `loader.load_volume_driver`."""
