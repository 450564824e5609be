"""Compute drivers: `base.ComputeDriver` (the contract), `libvirt` (KVM/QEMU), `fake` (in
memory, for scale tests), and `loader.load_compute_driver` to pick one by name."""
