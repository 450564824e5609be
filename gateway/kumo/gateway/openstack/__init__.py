"""The OpenStack dialect: Keystone v3, Nova v2.1, Glance v2, Neutron v2.0 and Cinder v3
over Kumo's gRPC services, in the shapes and status codes of the OpenStack API reference.

    errors.py         each service's error body (Nova's and Cinder's {"itemNotFound": ...},
                      Keystone's {"error": ...}, Glance's, Neutron's NeutronError)
    common.py         the X-Auth-Token, the token's scope (validated, cached briefly),
                      lookups by OpenStack id (uid filters), time and link helpers
    catalog.py        the Keystone catalog: every service endpoint per region
    microversions.py  OpenStack-API-Version negotiation
    paging.py         Nova's and Glance's limit/marker paging over Kumo page tokens
    filters.py        Neutron's and Cinder's attribute filters, fields= and id-marker paging
    keystone/, nova/, glance.py, neutron/, cinder/: the routes
"""
