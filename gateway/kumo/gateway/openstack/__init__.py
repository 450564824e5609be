"""The OpenStack dialect: Keystone v3, Nova v2.1 and Glance v2 over Kumo's gRPC services,
in the shapes and status codes of the OpenStack API reference. Neutron and Cinder have
their place (`neutron.py`, the catalog) and arrive with the network and storage services.

    errors.py         each service's error body (Nova's {"itemNotFound": ...}, Keystone's
                      {"error": ...}, Glance's, Neutron's NeutronError)
    common.py         the X-Auth-Token, the token's scope (validated, cached briefly),
                      lookups by OpenStack id (uid filters), time and link helpers
    catalog.py        the Keystone catalog: every service endpoint per region
    microversions.py  OpenStack-API-Version negotiation
    keystone/, nova/, glance.py, neutron.py: the routes; paging.py: limit/marker paging
"""
