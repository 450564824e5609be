"""The smallest end-to-end path on each backend: sign in, create, read, delete."""

from kumo.identity.v1 import identity_service_pb2 as iapi
from tests.support.cloud import Stubs, Tenant


def test_member_reads_own_project(tenant: Tenant) -> None:
    project = tenant.stubs["member"].identity.GetProject(iapi.GetProjectRequest(name=tenant.name))
    assert project.name == tenant.name


def test_admin_lists_projects(admin: Stubs, tenant: Tenant) -> None:
    names = [
        p.name
        for p in admin.identity.ListProjects(iapi.ListProjectsRequest(page_size=1000)).projects
    ]
    assert tenant.name in names
