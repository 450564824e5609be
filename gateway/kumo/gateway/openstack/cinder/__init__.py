"""Cinder v3 (`/volume/v3`, without a project id in the URLs: 3.67) over Kumo's storage
service: volumes (create, extend, delete), snapshots, volume types and their extra specs,
attachments (3.27) and limits.

A volume's, snapshot's and type's id is the Kumo uid; volumes are found among the
project's volumes in every zone, snapshots among those of the project's volumes.

    app.py      the routes, version documents, limits
    base.py     scope, microversion, lookups, replies
    views.py    Kumo messages -> Cinder dicts
    volumes.py  volumes and their actions, snapshots, types
    extra_specs.py  a volume type's extra specs
    attachments.py  the attachments API over AttachVolume/DetachVolume
"""
