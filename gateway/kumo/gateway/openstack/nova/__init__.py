"""Nova v2.1 (`/compute/v2.1`) over the compute, topology and identity services.

views.py      Kumo resources as Nova's JSON (servers, flavors, key pairs, groups)
base.py       what every handler shares: scope, microversion, response headers
servers.py    servers and their actions
addresses.py  a server's addresses by network; a create's `networks` as interfaces
block_devices.py  a create's block device mappings (boot from an existing volume)
resources.py  flavors, key pairs, server groups, availability zones, hypervisors, limits
app.py        the version documents and the routes
"""
