"""Networking in the API process: IPAM, the desired state handed to the network
driver, and the reconciler that keeps OVN equal to Kumo's database."""
