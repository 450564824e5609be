"""`kumo image`: bootable disk images, their data, and the projects they are shared with.

Images live in projects: `kumo image show foo` means
`projects/<signed-in project>/images/foo`; images of other projects (public or
shared ones) are given by full name, `projects/admin/images/kumo-tiny`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import grpc
from google.protobuf import field_mask_pb2

from kumo.cli import errors
from kumo.cli.context import (
    Group,
    Name,
    ProjectName,
    State,
    finish,
    label_options,
    list_all,
    list_options,
    operation_options,
    pass_state,
    patch,
    tag_options,
)
from kumo.cli.output import Column, TransferProgress, enum_label, format_bytes
from kumo.client import KumoError, short_id
from kumo.image.v1 import image_service_pb2 as pb
from kumo.image.v1 import resources_pb2

IMAGE = ProjectName("images")
PROJECT = Name("projects")
QCOW2_MAGIC = b"QFI\xfb"
"""The first bytes of a qcow2 file; anything else is taken for a raw disk."""


def _choices(enum: Any) -> dict[str, Any]:
    return {
        enum_label(enum.DESCRIPTOR, value.number): value.number
        for value in enum.DESCRIPTOR.values
        if value.number
    }


DISK_FORMATS = _choices(resources_pb2.DiskFormat)
"""`qcow2`, `raw` -> DiskFormat."""
VISIBILITIES = _choices(resources_pb2.Visibility)
"""`private`, `shared`, `public` -> Visibility."""
MEMBER_STATES = _choices(resources_pb2.ImageMember.State)


def sniff_format(path: str | os.PathLike[str]) -> str:
    """`qcow2` if the file starts with the qcow2 magic (`QFI\\xfb`), else `raw`.

    Raises OSError if the file cannot be read.
    """
    with open(path, "rb") as stream:
        return "qcow2" if stream.read(len(QCOW2_MAGIC)) == QCOW2_MAGIC else "raw"


def relative_name(name: str, project: str) -> str:
    """What a user types back for a resource: its id when it is in `project`,
    else its full name (`projects/admin/images/kumo-tiny`)."""
    parent, _, resource_id = name.rpartition("/")
    return resource_id if parent.rpartition("/")[0] == project else name


def _size(image: Any) -> str:
    return format_bytes(image.size_bytes) if image.size_bytes else ""


def image_columns(project: str) -> tuple[Column, ...]:
    """The image table; images of `project` show by id, others by full name."""
    return (
        Column("NAME", get=lambda image: relative_name(image.name, project)),
        Column("FORMAT", "disk_format"),
        Column("VISIBILITY", "visibility"),
        Column("STATE", "state"),
        Column("SIZE", get=_size),
        Column("CREATED", "create_time"),
    )


MEMBER_COLUMNS = (
    Column("PROJECT", "project", short=True),
    Column("STATE", "state"),
)


def split_name(name: str) -> tuple[str, str]:
    """`projects/p/images/foo` -> (`projects/p`, `foo`)."""
    parent, _, resource_id = name.rpartition("/images/")
    return parent, resource_id


def member_name(image: str, project: str) -> str:
    """`projects/{owner}/images/{image}/members/{project id}`."""
    return f"{image}/members/{short_id(project)}"


def _get(state: State, name: str) -> Any:
    return state.client().images.GetImage(pb.GetImageRequest(name=name))


def upload(state: State, name: str, path: Path, sha256: str | None) -> Any:
    """Streams the file into the image with a progress display; returns the image.

    Raises CliError with the call's exit code and a hint if the upload fails.
    """
    progress = TransferProgress(f"upload {short_id(name)}", path.stat().st_size)
    try:
        return state.client().upload_image(name, path, expected_sha256=sha256, on_progress=progress)
    except KumoError as error:
        failure = errors.CliError.from_kumo(
            error, state.endpoint(), prefix=f"uploading {path} to {name}: "
        )
        if error.code == grpc.StatusCode.INVALID_ARGUMENT:  # the server marked it ERROR
            failure.lines.append(f"  hint: {name} is in error now: delete it and create it again")
        elif error.code != grpc.StatusCode.FAILED_PRECONDITION:
            failure.lines.append(
                f"  hint: if `kumo image show {name}` says pending_upload, upload again"
            )
        raise failure from error
    except OSError as error:
        raise errors.CliError(f"cannot read {path}: {error.strerror or error}") from error
    except KeyboardInterrupt:
        raise errors.CliError(f"upload interrupted; {name} has no data", 130) from None
    finally:
        progress.close()


@click.group(cls=Group)
def image() -> None:
    """Images: bootable disks that instances are created from.

    IMAGE is an id in your project or a full name (`projects/admin/images/kumo-tiny`).
    """


@image.command("list")
@click.option(
    "--project",
    default="-",
    show_default=True,
    help="Only this project's images; `-`: every image you can see "
    "(your project's, public ones, and shared ones you accepted).",
)
@list_options()
@pass_state
def list_images(state: State, project: str, filter_: str, order_by: str, limit: int) -> None:
    """List images."""
    try:
        parent = "projects/-" if project == "-" else PROJECT.convert(project, None, None)
    except click.BadParameter as error:
        raise click.BadParameter(error.message, param_hint="'--project'") from None
    request = pb.ListImagesRequest(parent=parent, filter=filter_, order_by=order_by)
    items = list_all(state.client().images.ListImages, request, "images", limit)
    current = state.project() if state.output != "json" else ""
    state.printer.items(items, image_columns(current))


@image.command("show")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@pass_state
def show_image(state: State, name: str) -> None:
    """Show an image."""
    state.printer.item(_get(state, name))


@image.command("create")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="Upload this disk image (omit to create an empty image for `kumo image upload`).",
)
@click.option(
    "--format",
    "disk_format",
    type=click.Choice(list(DISK_FORMATS), case_sensitive=False),
    help="Disk format (default: qcow2 if the file has a qcow2 header, else raw).",
)
@click.option(
    "--visibility",
    type=click.Choice(list(VISIBILITIES), case_sensitive=False),
    help="Who may boot it (default: private; public needs a cloud administrator).",
)
@click.option("--min-disk-gib", type=click.IntRange(min=0), help="Smallest root disk it needs.")
@click.option("--min-ram-mib", type=click.IntRange(min=0), help="Smallest memory it needs.")
@click.option("--display-name", help="Human-readable name.")
@click.option("--description", help="Free text.")
@click.option("--sha256", metavar="HEX", help="Fail unless the data has this SHA-256.")
@label_options()
@tag_options()
@pass_state
def create_image(
    state: State,
    name: str,
    path: Path | None,
    disk_format: str | None,
    visibility: str | None,
    min_disk_gib: int | None,
    min_ram_mib: int | None,
    display_name: str | None,
    description: str | None,
    sha256: str | None,
    labels: dict[str, str],
    tags: tuple[str, ...],
) -> None:
    """Create an image and upload its data from --file, showing the bytes sent."""
    if path is None and disk_format is None:
        raise click.UsageError("give --file to upload, or --format to create an empty image")
    if path is None and sha256:
        raise click.UsageError("--sha256 checks the data of --file")
    if disk_format is None:
        assert path is not None
        try:
            disk_format = sniff_format(path)
        except OSError as error:
            raise errors.CliError(f"cannot read {path}: {error.strerror or error}") from error
    resource = resources_pb2.Image(
        display_name=display_name or "",
        description=description or "",
        labels=labels,
        tags=tags,
        disk_format=DISK_FORMATS[disk_format.lower()],
        visibility=VISIBILITIES[visibility.lower()] if visibility else None,
        min_disk_gib=min_disk_gib or 0,
        min_ram_mib=min_ram_mib or 0,
    )
    parent, image_id = split_name(name)
    request = pb.CreateImageRequest(parent=parent, image=resource, image_id=image_id)
    created = state.client().images.CreateImage(request)
    if path is not None:
        created = upload(state, created.name, path, sha256)
    state.printer.item(created)


@image.command("upload")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path),
    help="The disk image to upload.",
)
@click.option("--sha256", metavar="HEX", help="Fail unless the data has this SHA-256.")
@pass_state
def upload_image(state: State, name: str, path: Path, sha256: str | None) -> None:
    """Upload the data of an image that is pending_upload."""
    current = _get(state, name)
    if current.state != resources_pb2.Image.STATE_PENDING_UPLOAD:
        label = enum_label(resources_pb2.Image.State.DESCRIPTOR, current.state)
        raise errors.CliError(
            f"{name} is {label}: only images in pending_upload accept data", errors.REJECTED
        )
    state.printer.item(upload(state, name, path, sha256))


@image.command("download")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Where to write the data (replaced only once it is complete).",
)
@pass_state
def download_image(state: State, name: str, path: Path) -> None:
    """Download an image's data, checking it against the image's checksum."""
    found = _get(state, name)
    progress = TransferProgress(f"download {short_id(name)}", found.size_bytes)
    try:
        size = state.client().download_image(
            name, path, expected_sha256=found.checksum_sha256 or None, on_progress=progress
        )
    except OSError as error:
        raise errors.CliError(f"cannot write {path}: {error.strerror or error}") from error
    except KeyboardInterrupt:
        raise errors.CliError(f"download interrupted; {path} is unchanged", 130) from None
    finally:
        progress.close()
    state.printer.done(f"downloaded {name} to {path} ({format_bytes(size)})", found)


@image.command("update")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option("--display-name", help="New human-readable name.")
@click.option("--description", help="New description.")
@click.option(
    "--visibility",
    type=click.Choice(list(VISIBILITIES), case_sensitive=False),
    help="Who may boot it (public needs a cloud administrator).",
)
@click.option("--min-disk-gib", type=click.IntRange(min=0), help="Smallest root disk it needs.")
@click.option("--min-ram-mib", type=click.IntRange(min=0), help="Smallest memory it needs.")
@label_options(update=True)
@tag_options(update=True)
@click.option("--etag", help="Fail unless the image still has this etag.")
@pass_state
def update_image(
    state: State,
    name: str,
    display_name: str | None,
    description: str | None,
    visibility: str | None,
    min_disk_gib: int | None,
    min_ram_mib: int | None,
    labels: dict[str, str],
    remove_labels: tuple[str, ...],
    tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    etag: str | None,
) -> None:
    """Change an image's name, description, visibility, minimums, labels or tags."""
    current = _get(state, name)
    changes = {
        "display_name": display_name,
        "description": description,
        "visibility": VISIBILITIES[visibility.lower()] if visibility else None,
        "min_disk_gib": min_disk_gib,
        "min_ram_mib": min_ram_mib,
    }
    resource, mask = patch(current, changes, labels, remove_labels, etag, tags, remove_tags)
    request = pb.UpdateImageRequest(image=resource, update_mask=mask)
    state.printer.item(state.client().images.UpdateImage(request))


@image.command("delete")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option("--etag", help="Fail unless the image still has this etag.")
@operation_options
@pass_state
def delete_image(
    state: State, name: str, etag: str | None, no_wait: bool, async_: bool, timeout: float | None
) -> None:
    """Delete an image and its data; instances made from it keep running."""
    operation = state.client().images.DeleteImage(pb.DeleteImageRequest(name=name, etag=etag or ""))
    finish(state, operation, f"deleted {name}", no_wait=no_wait, async_=async_, timeout=timeout)


@image.command("share")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.argument("project", type=PROJECT)
@pass_state
def share_image(state: State, name: str, project: str) -> None:
    """Offer a shared image to PROJECT, which then accepts (or rejects) it."""
    request = pb.CreateImageMemberRequest(parent=name, member_project=project)
    state.printer.item(state.client().images.CreateImageMember(request))


@image.command("unshare")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.argument("project", type=PROJECT)
@pass_state
def unshare_image(state: State, name: str, project: str) -> None:
    """Stop sharing an image with PROJECT."""
    member = member_name(name, project)
    state.client().images.DeleteImageMember(pb.DeleteImageMemberRequest(name=member))
    state.printer.done(f"stopped sharing {name} with {project}")


def _answer(state: State, name: str, answer: str) -> None:
    member = resources_pb2.ImageMember(
        name=member_name(name, state.project()),
        state=MEMBER_STATES[answer],
    )
    request = pb.UpdateImageMemberRequest(
        image_member=member, update_mask=field_mask_pb2.FieldMask(paths=["state"])
    )
    state.printer.item(state.client().images.UpdateImageMember(request))


@image.command("accept")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@pass_state
def accept_image(state: State, name: str) -> None:
    """Accept an image shared with your project: it is listed for you then."""
    _answer(state, name, "accepted")


@image.command("reject")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@pass_state
def reject_image(state: State, name: str) -> None:
    """Decline an image shared with your project (it stays bootable by name)."""
    _answer(state, name, "rejected")


@image.command("members")
@click.argument("name", type=IMAGE, metavar="IMAGE")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Show at most N (0: all).")
@pass_state
def list_members(state: State, name: str, limit: int) -> None:
    """List the projects an image is shared with (as a member: your own membership)."""
    request = pb.ListImageMembersRequest(parent=name)
    method = state.client().images.ListImageMembers
    state.printer.items(list_all(method, request, "image_members", limit), MEMBER_COLUMNS)


def register(cli: click.Group) -> None:
    cli.add_command(image)
