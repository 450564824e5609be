"""Network drivers: the central NetworkDriver (OVN northbound, fake) and the host-side
port binding on Open vSwitch (ovs_host)."""
