"""The libvirt compute driver: KVM, or QEMU's TCG emulator where KVM cannot run.

One driver talks to the libvirtd of its own host (the agent runs beside it), because the
guests' disks and console logs are local files:

    <instances_dir>/<uid>/disk.qcow2            root disk: qcow2 overlay, image as backing file
                                                (none when it boots from a root volume)
    <instances_dir>/<uid>/console.log           serial console (ttyS0), appended across boots
    <instances_dir>/<uid>/ssh_authorized_keys   fw_cfg payloads, read by QEMU at each start
    <instances_dir>/<uid>/user_data

Each guest is a persistent domain named `kumo-<uid>` whose `<metadata>` holds a
`<kumo:guest>` element (uid, instance name, spec fingerprint): domains without it are
foreign and never listed or touched. The guest learns its hostname, ssh keys and user data
from QEMU fw_cfg entries `opt/kumo/hostname`, `opt/kumo/ssh_authorized_keys` and
`opt/kumo/user_data` (libvirt `<sysinfo type='fwcfg'>`; Linux: qemu_fw_cfg module,
/sys/firmware/qemu_fw_cfg/by_name/opt/kumo/*/raw).

Configuration (keyword arguments of `LibvirtDriver`):

    uri            libvirt URI of the local daemon (default qemu:///system)
    instances_dir  where guests' files live (default /var/lib/kumo/instances)
    domain_type    "kvm" or "qemu"; default: kvm when the host CPU has vmx/svm and libvirt
                   offers kvm, else qemu (TCG). /dev/kvm alone is not enough: some sandboxes
                   expose a /dev/kvm that opens and creates VMs but cannot run a guest.
    machine        QEMU machine type (default "pc": i440fx, ACPI PCI hot-plug on the root bus)
    arch           guest architecture (default x86_64)
    qemu_img       the qemu-img binary (default "qemu-img" on PATH)
    migration_uri  the URI other hosts' libvirtd reach this one at, for live migrations to
                   this host (e.g. qemu+tcp://10.0.0.5/system); default none: the host
                   cannot receive guests (see libvirt_migration.py)

Disks are made with `qemu-img`. Snapshots of running guests use libvirt's push-mode backup
job (the guest keeps running); if the hypervisor cannot, the guest is paused for the copy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import quoteattr

import libvirt

from kumo.drivers.compute import libvirt_disks, libvirt_nics
from kumo.drivers.compute.base import (
    CONSOLE_CHUNK,
    DEFAULT_SHUTDOWN_TIMEOUT,
    ROOT_DISK_SERIAL,
    ComputeDriver,
    GuestNic,
    GuestSpec,
    GuestState,
    HostInfo,
    MigrationOptions,
    MigrationResult,
    MigrationTarget,
    ProgressCallback,
    is_valid_uid,
)
from kumo.drivers.compute.libvirt_migration import (
    CEPH_SECRET,
    FINGERPRINT,
    GUEST_DIR,
    NAME,
    ROOT_DISK,
    SHARED_TOKEN,
    migration_flags,
    migration_params,
    progress_from_stats,
    result_from_stats,
    rewrite_definition,
)
from kumo.drivers.errors import (
    DriverError,
    GuestAlreadyExists,
    GuestNotFound,
    HypervisorUnavailable,
    ImageError,
    InvalidGuestState,
    MigrationCancelled,
    MigrationFailed,
)
from kumo.drivers.storage.base import VolumeDisk

#: XML namespace of the metadata element that marks a domain as Kumo's.
METADATA_NS = "https://kumo.dev/xmlns/libvirt/guest/v1"
METADATA_PREFIX = "kumo"
DOMAIN_PREFIX = "kumo-"
FWCFG_PREFIX = "opt/kumo/"
GIB = 1024**3
_POLL = 0.2
#: Seconds between progress samples of a live migration.
_MIGRATION_POLL = 0.5
_MIGRATABLE = libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_SECURE
#: Marks a guest dir made by prepare_incoming (holds the spec fingerprint); a dir with a
#: disk but without it, on a host with no such domain, is the source's: shared storage.
_INCOMING_MARK = ".incoming"
_SHARED_TOKEN_FILE = ".shared-token"
#: QEMU's own downtime limit, set when the options give none.
QEMU_DEFAULT_MAX_DOWNTIME_MS = 300
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)
# libvirt error domains and codes that mean the connection, not the request, failed.
_CONNECTION_ERROR_DOMAINS = {libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE}
_CONNECTION_ERROR_CODES = {
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
    libvirt.VIR_ERR_RPC,
    libvirt.VIR_ERR_AUTH_FAILED,
    libvirt.VIR_ERR_AUTH_CANCELLED,
    libvirt.VIR_ERR_AUTH_UNAVAILABLE,
}
_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: GuestState.RUNNING,
    libvirt.VIR_DOMAIN_RUNNING: GuestState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: GuestState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTDOWN: GuestState.RUNNING,  # shutting down: still running
    libvirt.VIR_DOMAIN_PAUSED: GuestState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: GuestState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTOFF: GuestState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: GuestState.CRASHED,
}
_STOPPED = (GuestState.SHUTOFF, GuestState.CRASHED)
_ACTIVE = (GuestState.RUNNING, GuestState.PAUSED)

T = TypeVar("T")

ET.register_namespace(METADATA_PREFIX, METADATA_NS)  # <kumo:guest>, not <ns0:guest>

# libvirt prints every error to stderr unless a handler is registered (process-wide).
_quiet_lock = threading.Lock()
_quiet = False


def _silence_libvirt() -> None:
    global _quiet
    with _quiet_lock:
        if not _quiet:
            libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
            _quiet = True


class LibvirtDriver(ComputeDriver):
    """Guests as libvirt domains on the local libvirtd (see the module docstring)."""

    def __init__(
        self,
        uri: str = "qemu:///system",
        instances_dir: str | Path = "/var/lib/kumo/instances",
        domain_type: str | None = None,
        machine: str = "pc",
        arch: str = "x86_64",
        qemu_img: str = "qemu-img",
        migration_uri: str | None = None,
    ) -> None:
        if domain_type not in (None, "kvm", "qemu"):
            raise ValueError(f"domain_type must be 'kvm' or 'qemu', not {domain_type!r}")
        self.uri = uri
        self.instances_dir = Path(instances_dir).absolute()
        self.machine = machine
        self.arch = arch
        self.qemu_img = qemu_img
        self.migration_uri = migration_uri
        self._domain_type: str | None = domain_type
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._locks_lock = threading.Lock()
        self._migrations: dict[str, threading.Event] = {}  # uid -> abort requested

    # ---- connection and errors ---------------------------------------------------------------

    def _connection(self) -> Any:
        """The open connection (libvirt.virConnect), opened on first use and after a loss."""
        with self._conn_lock:
            if self._conn is None:
                self._conn = self._open()
            return self._conn

    def _open(self) -> Any:
        """A new connection to the hypervisor; HypervisorUnavailable if there is none."""
        _silence_libvirt()
        try:
            return libvirt.open(self.uri)
        except libvirt.libvirtError as err:
            raise HypervisorUnavailable(
                reason=f"cannot connect to {self.uri}: {err.get_error_message()}"
            ) from err

    def _drop_connection(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _connection_lost(self, err: libvirt.libvirtError) -> bool:
        if (
            err.get_error_code() in _CONNECTION_ERROR_CODES
            or err.get_error_domain() in _CONNECTION_ERROR_DOMAINS
        ):
            return True
        conn = self._conn
        if conn is None:
            return False
        try:
            return not conn.isAlive()
        except libvirt.libvirtError:
            return True

    def _translate(self, err: libvirt.libvirtError, uid: str | None, action: str) -> DriverError:
        """The driver error for a libvirt error (the caller raises it `from err`)."""
        if self._connection_lost(err):
            self._drop_connection()
            return HypervisorUnavailable(
                reason=f"lost connection to {self.uri} during {action}: {err.get_error_message()}"
            )
        if uid is not None and err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return GuestNotFound(uid=uid)
        where = f" of guest {uid}" if uid is not None else ""
        return DriverError(reason=f"{action}{where} failed: {err.get_error_message()}")

    @contextlib.contextmanager
    def _own_connection(self) -> Iterator[Any]:
        """A connection of its own, closed on exit, for one call that runs for long (a
        migration). libvirt's client can leave a call made from another thread on the same
        connection unsent until the long call returns: seen here, an abortJob waited
        behind the very migration it was to cancel. Raises HypervisorUnavailable."""
        conn = self._open()
        try:
            yield conn
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _call(self, uid: str | None, action: str, fn: Callable[[], T]) -> T:
        """Runs one libvirt call, mapping its errors to driver errors."""
        try:
            return fn()
        except libvirt.libvirtError as err:
            raise self._translate(err, uid, action) from err

    @contextlib.contextmanager
    def _guest_lock(self, uid: str) -> Iterator[None]:
        with self._locks_lock:
            lock = self._locks.setdefault(uid, threading.RLock())
        with lock:
            yield

    # ---- lookups -----------------------------------------------------------------------------

    def _find(self, uid: str) -> Any:
        """The domain of guest `uid`, or None if there is none. A domain with the name but
        without Kumo's metadata raises GuestAlreadyExists (its name is taken)."""
        if not is_valid_uid(uid):
            return None
        conn = self._connection()
        try:
            dom = conn.lookupByName(DOMAIN_PREFIX + uid)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise self._translate(err, uid, "lookup") from err
        meta = self._metadata(dom)
        if meta is None or meta.get("uid") != uid:
            raise GuestAlreadyExists(
                f"domain {DOMAIN_PREFIX}{uid} exists but was not made by Kumo", uid=uid
            )
        return dom

    def _lookup(self, uid: str) -> Any:
        """The domain of guest `uid`; raises GuestNotFound (also for a foreign domain)."""
        try:
            dom = self._find(uid)
        except GuestAlreadyExists as err:
            raise GuestNotFound(uid=uid) from err
        if dom is None:
            raise GuestNotFound(uid=uid)
        return dom

    def _metadata(self, dom: Any) -> dict[str, str] | None:
        """Kumo's metadata of a domain (uid, name, spec), or None for a foreign domain."""
        try:
            text = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except libvirt.libvirtError as err:
            if err.get_error_code() in (
                libvirt.VIR_ERR_NO_DOMAIN_METADATA,
                libvirt.VIR_ERR_NO_DOMAIN,
            ):
                return None
            raise self._translate(err, None, "read metadata") from err
        root = ET.fromstring(text)
        return {child.tag.split("}")[-1]: child.text or "" for child in root}

    def _dom_state(self, dom: Any, uid: str) -> GuestState:
        state, reason = self._call(uid, "get state", dom.state)
        if state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
            return GuestState.CRASHED
        return _STATES.get(state, GuestState.RUNNING)

    def _guest_dir(self, uid: str) -> Path:
        return self.instances_dir / uid

    # ---- host --------------------------------------------------------------------------------

    def _domain_type_for(self, conn: Any) -> str:
        if self._domain_type is None:
            caps = ET.fromstring(self._call(None, "read capabilities", conn.getCapabilities))
            offered = {
                dom.get("type")
                for arch in caps.findall("guest/arch")
                if arch.get("name") == self.arch
                for dom in arch.findall("domain")
            }
            host_arch = caps.findtext("host/cpu/arch") or ""
            features = {f.get("name") for f in caps.findall("host/cpu/feature")}
            # x86 needs vmx/svm for KVM; /dev/kvm may exist without it (nested sandboxes).
            hw_virt = host_arch not in ("x86_64", "i686") or bool(features & {"vmx", "svm"})
            self._domain_type = "kvm" if "kvm" in offered and hw_virt else "qemu"
        return self._domain_type

    def validate(self) -> None:
        conn = self._connection()
        domain_type = self._domain_type_for(conn)
        try:
            conn.getDomainCapabilities(None, self.arch, self.machine, domain_type, 0)
        except libvirt.libvirtError as err:
            if self._connection_lost(err):
                raise self._translate(err, None, "validate") from err
            raise HypervisorUnavailable(
                reason=f"{domain_type} guests of arch {self.arch} and machine {self.machine} "
                f"are not supported at {self.uri}: {err.get_error_message()}"
            ) from err
        if shutil.which(self.qemu_img) is None:
            raise HypervisorUnavailable(reason=f"{self.qemu_img} not found")
        try:
            self.instances_dir.mkdir(parents=True, exist_ok=True)
            probe = self.instances_dir / f".probe-{uuidlib.uuid4().hex}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as err:
            raise HypervisorUnavailable(
                reason=f"instances_dir {self.instances_dir} is not writable: {err}"
            ) from err

    def host_info(self) -> HostInfo:
        conn = self._connection()
        info = self._call(None, "get host info", conn.getInfo)
        hv_version = self._call(None, "get version", conn.getVersion)
        lib_version = self._call(None, "get library version", conn.getLibVersion)
        hv_type = self._call(None, "get type", conn.getType)
        accel = "KVM" if self._domain_type_for(conn) == "kvm" else "TCG"
        path = self.instances_dir
        while not path.exists() and path != path.parent:
            path = path.parent
        disk_gib = shutil.disk_usage(path).total // GIB
        return HostInfo(
            vcpus=int(info[2]),
            memory_mib=int(info[1]),
            disk_gib=int(disk_gib),
            description=f"{hv_type} {_version(hv_version)} ({accel}) "
            f"via libvirt {_version(lib_version)}",
            migration_uri=self.migration_uri or "",
        )

    # ---- images and disks --------------------------------------------------------------------

    def _qemu_img(self, path: Path, *args: str, timeout: float | None = None) -> str:
        try:
            result = subprocess.run(
                [self.qemu_img, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as err:
            raise HypervisorUnavailable(reason=f"{self.qemu_img} not found") from err
        except subprocess.TimeoutExpired as err:
            raise ImageError(path=path, reason=f"qemu-img {args[0]} timed out") from err
        if result.returncode != 0:
            raise ImageError(path=path, reason=result.stderr.strip() or result.stdout.strip())
        return result.stdout

    def _check_image(self, spec: GuestSpec) -> None:
        """Raises ImageError unless the image exists, is in its declared format, has no
        backing file and fits in the disk (none to check without one)."""
        path = spec.image_path
        if path is None:
            return
        if not path.is_absolute():
            raise ImageError(path=path, reason="image path must be absolute")
        if not path.is_file():
            raise ImageError(path=path, reason="no such file")
        if not os.access(path, os.R_OK):
            raise ImageError(path=path, reason="not readable")
        info = json.loads(
            self._qemu_img(path, "info", "-U", "--output=json", str(path), timeout=60)
        )
        if info.get("format") != spec.image_format:
            raise ImageError(
                path=path,
                reason=f"is {info.get('format')}, not {spec.image_format} as declared",
            )
        if info.get("backing-filename") or info.get("full-backing-filename"):
            raise ImageError(path=path, reason="has a backing file: images must be standalone")
        if int(info.get("virtual-size", 0)) > spec.disk_gib * GIB:
            raise ImageError(
                path=path,
                reason=f"virtual size {info['virtual-size']} bytes exceeds {spec.disk_gib} GiB",
            )

    def _create_overlay(self, spec: GuestSpec, disk: Path) -> None:
        """Makes `disk`, the guest's root disk over its image (nothing without one: it
        boots from its root volume)."""
        if spec.image_path is None:
            return
        self._qemu_img(
            spec.image_path,
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            spec.image_format,
            "-b",
            str(spec.image_path),
            str(disk),
            f"{spec.disk_gib}G",
            timeout=120,
        )

    def _write_metadata_files(self, spec: GuestSpec, guest_dir: Path) -> None:
        keys = guest_dir / "ssh_authorized_keys"
        user_data = guest_dir / "user_data"
        if spec.ssh_authorized_keys:
            keys.write_text("".join(k.strip() + "\n" for k in spec.ssh_authorized_keys))
        else:
            keys.unlink(missing_ok=True)
        if spec.user_data:
            user_data.write_bytes(spec.user_data)
        else:
            user_data.unlink(missing_ok=True)

    # ---- domain XML --------------------------------------------------------------------------

    def _domain_xml(self, spec: GuestSpec, domain_type: str, dom_uuid: str | None) -> str:
        guest_dir = self._guest_dir(spec.uid)
        root = ET.Element("domain", type=domain_type)
        ET.SubElement(root, "name").text = DOMAIN_PREFIX + spec.uid
        if dom_uuid is not None:
            ET.SubElement(root, "uuid").text = dom_uuid
        ET.SubElement(root, "title").text = " ".join(spec.name.split())[:200] or spec.uid
        meta = ET.SubElement(ET.SubElement(root, "metadata"), f"{{{METADATA_NS}}}guest")
        ET.SubElement(meta, f"{{{METADATA_NS}}}uid").text = spec.uid
        ET.SubElement(meta, f"{{{METADATA_NS}}}name").text = spec.name
        ET.SubElement(meta, f"{{{METADATA_NS}}}spec").text = spec.fingerprint()
        ET.SubElement(root, "memory", unit="MiB").text = str(spec.memory_mib)
        ET.SubElement(root, "vcpu").text = str(spec.vcpus)
        sysinfo = ET.SubElement(root, "sysinfo", type="fwcfg")
        ET.SubElement(sysinfo, "entry", name=FWCFG_PREFIX + "hostname").text = spec.hostname
        if spec.ssh_authorized_keys:
            ET.SubElement(
                sysinfo,
                "entry",
                name=FWCFG_PREFIX + "ssh_authorized_keys",
                file=str(guest_dir / "ssh_authorized_keys"),
            )
        if spec.user_data:
            ET.SubElement(
                sysinfo, "entry", name=FWCFG_PREFIX + "user_data", file=str(guest_dir / "user_data")
            )
        os_el = ET.SubElement(root, "os")
        ET.SubElement(os_el, "type", arch=self.arch, machine=self.machine).text = "hvm"
        ET.SubElement(os_el, "boot", dev="hd")
        features = ET.SubElement(root, "features")
        ET.SubElement(features, "acpi")
        ET.SubElement(features, "apic")
        ET.SubElement(root, "clock", offset="utc")
        ET.SubElement(root, "on_poweroff").text = "destroy"
        ET.SubElement(root, "on_reboot").text = "restart"
        ET.SubElement(root, "on_crash").text = "destroy"
        devices = ET.SubElement(root, "devices")
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="qcow2", discard="unmap")
        ET.SubElement(disk, "source", file=str(guest_dir / "disk.qcow2"))
        ET.SubElement(disk, "target", dev="vda", bus="virtio")
        ET.SubElement(disk, "serial").text = ROOT_DISK_SERIAL
        libvirt_nics.add_interfaces(devices, spec.nics)
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=str(guest_dir / "console.log"), append="on")
        ET.SubElement(serial, "target", port="0")
        ET.SubElement(devices, "controller", type="usb", model="none")
        ET.SubElement(devices, "memballoon", model="none")
        xml = ET.tostring(root, encoding="unicode")
        volume = spec.root_volume
        if volume is None:
            return xml
        boot = libvirt_disks.disk_xml(
            volume.source,
            "vda",
            volume.serial,
            read_only=volume.read_only,
            secret_uuid=self._secret_for(volume),
            limits=volume.limits,
        )
        return libvirt_disks.with_root_volume(xml, boot)

    def _secret_for(self, disk: VolumeDisk) -> str:
        """The uuid of the libvirt secret an RBD volume is opened with ("" for files)."""
        if disk.source.kind != "rbd":
            return ""
        return libvirt_disks.ceph_secret(self._connection(), disk.source.user, disk.source.key)

    # ---- power helpers -----------------------------------------------------------------------

    def _power_off(self, dom: Any, uid: str) -> None:
        """Destroys (powers off) the domain; fine if it is not running."""
        try:
            dom.destroy()
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and not dom.isActive():
                return
            raise self._translate(err, uid, "power off") from err

    def _shutdown(self, dom: Any, uid: str, timeout_seconds: float) -> bool:
        """Asks the guest to shut down (ACPI) and waits; True if it did within the time."""
        if timeout_seconds <= 0:
            return False
        try:
            dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID and not dom.isActive():
                return True
            raise self._translate(err, uid, "shut down") from err
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not self._call(uid, "get state", dom.isActive):
                return True
            time.sleep(_POLL)
        return not self._call(uid, "get state", dom.isActive)

    def _power_on(self, dom: Any, uid: str) -> None:
        self._call(uid, "start", dom.create)

    # ---- lifecycle ---------------------------------------------------------------------------

    def spawn(self, spec: GuestSpec) -> None:
        uid = spec.uid
        with self._guest_lock(uid):
            existing = self._find(uid)
            if existing is not None:
                meta = self._metadata(existing) or {}
                if meta.get("spec") == spec.fingerprint():
                    return
                raise GuestAlreadyExists(uid=uid)
            self._check_image(spec)
            conn = self._connection()
            domain_type = self._domain_type_for(conn)
            guest_dir = self._guest_dir(uid)
            dom: Any = None
            try:
                # No domain: whatever is in the directory was left by a spawn that died.
                shutil.rmtree(guest_dir, ignore_errors=True)
                guest_dir.mkdir(parents=True)
                self._write_metadata_files(spec, guest_dir)
                self._create_overlay(spec, guest_dir / "disk.qcow2")
                xml = self._domain_xml(spec, domain_type, None)
                dom = self._call(uid, "define", lambda: conn.defineXML(xml))
                self._power_on(dom, uid)
            except BaseException as err:
                self._cleanup(dom, guest_dir)
                if isinstance(err, OSError):
                    raise DriverError(reason=f"spawn of guest {uid} failed: {err}") from err
                raise

    def _cleanup(self, dom: Any, guest_dir: Path) -> None:
        """Best-effort removal of what a failed spawn made."""
        if dom is not None:
            with contextlib.suppress(libvirt.libvirtError):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefineFlags(_UNDEFINE_FLAGS)
        shutil.rmtree(guest_dir, ignore_errors=True)

    def destroy(self, uid: str) -> None:
        if not is_valid_uid(uid):
            return
        with self._guest_lock(uid):
            try:
                dom = self._find(uid)
            except GuestAlreadyExists:
                dom = None  # a foreign domain of that name: not ours to remove
            if dom is not None:
                if self._call(uid, "get state", dom.isActive):
                    self._power_off(dom, uid)
                try:
                    dom.undefineFlags(_UNDEFINE_FLAGS)
                except libvirt.libvirtError as err:
                    if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise self._translate(err, uid, "undefine") from err
            try:
                shutil.rmtree(self._guest_dir(uid))
            except FileNotFoundError:
                pass
            except OSError as err:
                raise DriverError(reason=f"cannot remove files of guest {uid}: {err}") from err

    def start(self, uid: str) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state == GuestState.RUNNING:
                return
            if state == GuestState.PAUSED:
                raise InvalidGuestState(uid=uid, state="paused", action="start (use resume)")
            self._power_on(dom, uid)

    def stop(self, uid: str, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state in _STOPPED:
                return
            if state == GuestState.PAUSED or not self._shutdown(dom, uid, timeout_seconds):
                self._power_off(dom, uid)

    def reboot(
        self, uid: str, hard: bool = False, timeout_seconds: float = DEFAULT_SHUTDOWN_TIMEOUT
    ) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if not hard:
                if state != GuestState.RUNNING:
                    raise InvalidGuestState(uid=uid, state=state.value, action="soft reboot")
                if not self._shutdown(dom, uid, timeout_seconds):
                    self._power_off(dom, uid)
            elif state in _ACTIVE:
                self._power_off(dom, uid)
            self._power_on(dom, uid)

    def suspend(self, uid: str) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state == GuestState.PAUSED:
                return
            if state in _STOPPED:
                raise InvalidGuestState(uid=uid, state=state.value, action="suspend")
            self._call(uid, "suspend", dom.suspend)

    def resume(self, uid: str) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state == GuestState.RUNNING:
                return
            if state in _STOPPED:
                raise InvalidGuestState(uid=uid, state=state.value, action="resume (use start)")
            self._call(uid, "resume", dom.resume)

    def state(self, uid: str) -> GuestState:
        try:
            dom = self._find(uid)
        except GuestAlreadyExists:
            return GuestState.ABSENT  # foreign domain
        if dom is None:
            return GuestState.ABSENT
        try:
            return self._dom_state(dom, uid)
        except GuestNotFound:
            return GuestState.ABSENT  # removed meanwhile

    def list_guests(self) -> dict[str, GuestState]:
        conn = self._connection()
        domains = self._call(None, "list domains", lambda: conn.listAllDomains(0))
        guests: dict[str, GuestState] = {}
        for dom in domains:
            try:
                if not dom.name().startswith(DOMAIN_PREFIX):
                    continue
                meta = self._metadata(dom)
                if meta is None or not meta.get("uid"):
                    continue
                guests[meta["uid"]] = self._dom_state(dom, meta["uid"])
            except GuestNotFound:
                continue  # removed while listing
            except libvirt.libvirtError as err:
                if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise self._translate(err, None, "list domains") from err
        return guests

    def read_console(self, uid: str, offset: int = 0, max_bytes: int = CONSOLE_CHUNK) -> bytes:
        if offset < 0:
            raise ValueError("offset must be >= 0")
        self._lookup(uid)
        size = max(0, min(max_bytes, CONSOLE_CHUNK))
        try:
            with open(self._guest_dir(uid) / "console.log", "rb") as log:
                log.seek(offset)
                return log.read(size)
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise DriverError(reason=f"cannot read console of guest {uid}: {err}") from err

    def rebuild(self, uid: str, spec: GuestSpec) -> None:
        if spec.uid != uid:
            raise ValueError(f"spec.uid {spec.uid!r} is not {uid!r}")
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            self._check_image(spec)
            guest_dir = self._guest_dir(uid)
            disk = guest_dir / "disk.qcow2"
            fresh = guest_dir / "disk.qcow2.new"
            try:
                guest_dir.mkdir(parents=True, exist_ok=True)
                fresh.unlink(missing_ok=True)
                self._create_overlay(spec, fresh)
            except BaseException as err:
                fresh.unlink(missing_ok=True)
                if isinstance(err, OSError):
                    raise ImageError(path=fresh, reason=str(err)) from err
                raise
            was_active = self._dom_state(dom, uid) in _ACTIVE
            if was_active:
                self._power_off(dom, uid)
            try:
                self._write_metadata_files(spec, guest_dir)
                if spec.image_path is not None:  # (else its new root volume is the disk)
                    os.replace(fresh, disk)
            except OSError as err:
                raise DriverError(reason=f"rebuild of guest {uid} failed: {err}") from err
            conn = self._connection()
            xml = self._domain_xml(spec, self._domain_type_for(conn), dom.UUIDString())
            dom = self._call(uid, "redefine", lambda: conn.defineXML(xml))
            if was_active:
                self._power_on(dom, uid)

    def resize(self, uid: str, spec: GuestSpec) -> None:
        if spec.uid != uid:
            raise ValueError(f"spec.uid {spec.uid!r} is not {uid!r}")
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state in _ACTIVE:
                raise InvalidGuestState(uid=uid, state=state.value, action="resize")
            disk = self._guest_dir(uid) / "disk.qcow2"
            if spec.image_path is not None:  # (a root volume grows with its volume)
                self._qemu_img(disk, "resize", "-q", "--shrink", str(disk), f"{spec.disk_gib}G")
            conn = self._connection()
            xml = self._domain_xml(spec, self._domain_type_for(conn), dom.UUIDString())
            self._call(uid, "redefine", lambda: conn.defineXML(xml))

    # ---- snapshot ----------------------------------------------------------------------------

    def snapshot(self, uid: str, dest: Path) -> None:
        dest = Path(dest).absolute()
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            if not dest.parent.is_dir():
                raise ImageError(path=dest, reason="directory does not exist")
            disk = self._guest_dir(uid) / "disk.qcow2"
            tmp = dest.parent / f".{dest.name}.{uuidlib.uuid4().hex[:8]}.tmp"
            try:
                state = self._dom_state(dom, uid)
                definition = self._call(uid, "read definition", dom.XMLDesc)
                if libvirt_disks.network_root(definition) is not None:  # QEMU reads it
                    self._backup_network_root(dom, uid, tmp, state)
                elif state in _ACTIVE and not self._backup(dom, uid, tmp):
                    self._copy_paused(dom, uid, disk, tmp, state)
                elif state not in _ACTIVE:
                    self._convert(disk, tmp)
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)

    def _convert(self, disk: Path, dest: Path, force_share: bool = False) -> None:
        """Copies the disk (and its backing chain) into one standalone qcow2."""
        args = ["convert", "-q", "-f", "qcow2", "-O", "qcow2"]
        if force_share:
            args.append("-U")
        self._qemu_img(dest, *args, str(disk), str(dest))

    def _backup(self, dom: Any, uid: str, dest: Path) -> bool:
        """A full push-mode backup of the running guest's root disk to `dest` (libvirt
        creates it as a standalone qcow2). False if the hypervisor cannot do backups."""
        xml = (
            "<domainbackup mode='push'><disks>"
            "<disk name='vda' backup='yes' type='file'>"
            f"<driver type='qcow2'/><target file={quoteattr(str(dest))}/>"
            "</disk></disks></domainbackup>"
        )
        try:
            dom.backupBegin(xml, None, 0)
        except libvirt.libvirtError as err:
            if err.get_error_code() in (
                libvirt.VIR_ERR_NO_SUPPORT,
                libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
                libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
            ):
                return False
            raise self._translate(err, uid, "snapshot") from err
        while True:
            info = self._call(uid, "watch snapshot", dom.jobInfo)
            if info[0] == libvirt.VIR_DOMAIN_JOB_NONE:
                break
            time.sleep(_POLL)
        stats = self._call(
            uid,
            "read snapshot result",
            lambda: dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED),
        )
        if stats.get("type") != libvirt.VIR_DOMAIN_JOB_COMPLETED:
            message = stats.get("errmsg") or f"backup job ended as {stats.get('type')}"
            raise ImageError(path=dest, reason=f"snapshot of guest {uid} failed: {message}")
        return True

    def _backup_network_root(self, dom: Any, uid: str, dest: Path, state: GuestState) -> None:
        """Backs up a root disk that QEMU opens over the network (RBD); a guest that is not
        running is started paused for the time of the backup (its CPUs never run)."""
        started = state not in _ACTIVE
        if started:
            self._call(
                uid, "start paused", lambda: dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
            )
        try:
            if not self._backup(dom, uid, dest):
                raise ImageError(path=dest, reason="the hypervisor cannot back up a network disk")
        finally:
            if started:
                self._power_off(dom, uid)

    def _copy_paused(self, dom: Any, uid: str, disk: Path, dest: Path, state: GuestState) -> None:
        """Copies the disk of a running guest paused for the time of the copy (QEMU drains
        its I/O on pause, so the copy is consistent)."""
        if state == GuestState.RUNNING:
            self._call(uid, "pause for snapshot", dom.suspend)
        try:
            self._convert(disk, dest, force_share=True)
        finally:
            if state == GuestState.RUNNING:
                self._call(uid, "resume after snapshot", dom.resume)

    # ---- live migration (see libvirt_migration.py) -------------------------------------------

    def prepare_incoming(self, spec: GuestSpec) -> MigrationTarget:
        uid = spec.uid
        if not self.migration_uri:
            raise MigrationFailed(uid=uid, reason="this host has no migration_uri configured")
        with self._guest_lock(uid):
            if self._find(uid) is not None:
                raise GuestAlreadyExists(uid=uid)
            self._check_image(spec)
            guest_dir = self._guest_dir(uid)
            mark = guest_dir / _INCOMING_MARK
            fingerprint = spec.fingerprint()
            # The source's files already here: shared storage (a guest booted from a
            # volume has no disk.qcow2, but its console log, made when it first started).
            found = any((guest_dir / f).exists() for f in ("disk.qcow2", "console.log"))
            shared = found and not mark.exists()
            properties = {GUEST_DIR: str(guest_dir), FINGERPRINT: fingerprint, NAME: spec.name}
            root = spec.root_volume
            if root is not None and root.source.kind == "rbd":  # in place for both hosts
                properties[ROOT_DISK] = root.source.path
                properties[CEPH_SECRET] = self._secret_for(root)
            if shared:
                properties[SHARED_TOKEN] = self._shared_token(uid, guest_dir)
            elif not (mark.exists() and mark.read_text() == fingerprint):
                try:
                    shutil.rmtree(guest_dir, ignore_errors=True)
                    guest_dir.mkdir(parents=True)
                    self._write_metadata_files(spec, guest_dir)
                    self._create_overlay(spec, guest_dir / "disk.qcow2")
                    mark.write_text(fingerprint)
                except BaseException as err:
                    shutil.rmtree(guest_dir, ignore_errors=True)
                    if isinstance(err, OSError):
                        raise DriverError(reason=f"prepare of guest {uid} failed: {err}") from err
                    raise
            return MigrationTarget(
                uid=uid, uri=self.migration_uri, shared_storage=shared, properties=properties
            )

    def _shared_token(self, uid: str, guest_dir: Path) -> str:
        """The token of a disk found in place (kept in `.shared-token`, made once): the
        source reads it in its own guest dir to prove the storage is really shared, not a
        stale directory of the same name."""
        path = guest_dir / _SHARED_TOKEN_FILE
        try:
            if path.exists():
                return path.read_text()
            token = uuidlib.uuid4().hex
            path.write_text(token)
            return token
        except OSError as err:
            raise DriverError(reason=f"prepare of guest {uid} failed: {err}") from err

    def _check_shared(self, uid: str, target: MigrationTarget) -> None:
        """Raises MigrationFailed unless the target's shared storage is this host's."""
        token = target.properties.get(SHARED_TOKEN)
        path = self._guest_dir(uid) / _SHARED_TOKEN_FILE
        try:
            seen = path.read_text()
        except OSError:
            seen = None
        if token is None or seen != token:
            raise MigrationFailed(
                uid=uid,
                reason="the destination found a disk of this guest that is not this host's "
                "(storage not shared: remove the stale directory there)",
            )

    def migrate_live(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        options = options or MigrationOptions()
        block = self._block(uid, target, options)
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state not in _ACTIVE:
                raise InvalidGuestState(uid=uid, state=state.value, action="migrate live")
            return self._send(dom, uid, target, options, block, on_progress)

    def migrate_cold(
        self,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> MigrationResult:
        # The stopped guest is started paused before its first instruction and sent as a
        # paused guest (no LIVE flag, PAUSED on arrival): libvirt then moves its
        # definition and, by the same NBD copy as a live block migration, its disk.
        options = replace(options or MigrationOptions(), auto_converge=False, post_copy=False)
        block = self._block(uid, target, options)
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            state = self._dom_state(dom, uid)
            if state not in _STOPPED:
                raise InvalidGuestState(uid=uid, state=state.value, action="migrate cold")
            self._call(
                uid, "start paused", lambda: dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
            )
            try:
                return self._send(dom, uid, target, options, block, on_progress, live=False)
            except BaseException:
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()  # back to SHUTOFF, as it was
                raise

    def _block(self, uid: str, target: MigrationTarget, options: MigrationOptions) -> bool:
        """Whether to copy the disk; MigrationFailed when it must be and may not."""
        root_disk = target.properties.get(ROOT_DISK)  # a network disk: nothing to copy
        block = options.block_migration
        if block is None:
            block = not target.shared_storage and root_disk is None
        if block and root_disk is not None:
            raise MigrationFailed(uid=uid, reason="the root disk is in Ceph: no block migration")
        if not block and not target.shared_storage and root_disk is None:
            raise MigrationFailed(uid=uid, reason="storage is not shared: block migration needed")
        return block

    def _send(
        self,
        dom: Any,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions,
        block: bool,
        on_progress: ProgressCallback | None,
        live: bool = True,
    ) -> MigrationResult:
        """Migrates the started guest (the caller holds its lock) and forgets it here."""
        if target.shared_storage:
            self._check_shared(uid, target)
        source_dir = str(self._guest_dir(uid))
        current = self._call(uid, "read definition", lambda: dom.XMLDesc(_MIGRATABLE))
        inactive = self._call(
            uid,
            "read definition",
            lambda: dom.XMLDesc(_MIGRATABLE | libvirt.VIR_DOMAIN_XML_INACTIVE),
        )
        root_disk = target.properties.get(ROOT_DISK)
        if root_disk is not None and libvirt_disks.network_root(current) != root_disk:
            raise MigrationFailed(
                uid=uid, reason=f"the destination opens {root_disk}, not this guest's root"
            )
        props = target.properties
        params = migration_params(
            options,
            rewrite_definition(current, source_dir, props, METADATA_NS),
            rewrite_definition(inactive, source_dir, props, METADATA_NS),
            ["vda"] if block else [],
        )
        # Always set: QEMU keeps the value of an earlier (failed) migration otherwise.
        downtime = options.max_downtime_ms or QEMU_DEFAULT_MAX_DOWNTIME_MS
        self._call(uid, "set max downtime", lambda: dom.migrateSetMaxDowntime(downtime))
        self._migrations[uid] = threading.Event()
        try:
            result = self._run_migration(
                dom, uid, target, options, block, params, on_progress, live
            )
        finally:
            self._migrations.pop(uid, None)
        # The guest runs on the destination: forget it here (a crash before this line
        # leaves a SHUTOFF definition, which `destroy` removes).
        with contextlib.suppress(libvirt.libvirtError):
            dom.undefineFlags(_UNDEFINE_FLAGS)
        if target.shared_storage:
            (Path(source_dir) / _SHARED_TOKEN_FILE).unlink(missing_ok=True)
        else:
            shutil.rmtree(source_dir, ignore_errors=True)
        return result

    def _run_migration(
        self,
        dom: Any,
        uid: str,
        target: MigrationTarget,
        options: MigrationOptions,
        block: bool,
        params: dict[str, Any],
        on_progress: ProgressCallback | None,
        live: bool,
    ) -> MigrationResult:
        """Runs migrateToURI3 in a thread; samples progress, switches to post-copy, and
        enforces the timeout and abort here. A progress callback that raises cancels the
        migration (MigrationFailed, unless it completed meanwhile). Raises MigrationFailed,
        MigrationCancelled."""
        flags = migration_flags(options, block, target.shared_storage, live)
        outcome: list[BaseException | None] = []
        aborted = self._migrations[uid]
        dom_uuid = dom.UUID()  # read from the object, no call

        def run() -> None:
            try:
                with self._own_connection() as conn:
                    conn.lookupByUUID(dom_uuid).migrateToURI3(target.uri, params, flags)
                outcome.append(None)
            except BaseException as err:  # reported by the caller's thread
                outcome.append(err)

        started = time.monotonic()
        worker = threading.Thread(target=run, name=f"migrate-{uid}", daemon=True)
        worker.start()
        post_copy = False
        timed_out = False
        callback_error: Exception | None = None
        while True:
            worker.join(_MIGRATION_POLL)
            if not worker.is_alive():
                break
            if aborted.is_set() or timed_out or callback_error is not None:
                # Sent from this thread on the driver's connection (the migration runs on
                # a connection of its own, see `_own_connection`). Again at every poll
                # until the job ends: QEMU may drop a cancel that comes while the
                # migration is still setting up, and the job would run on.
                with contextlib.suppress(libvirt.libvirtError):
                    dom.abortJob()
            try:
                stats = dom.jobStats()
            except libvirt.libvirtError:
                continue  # the job is ending
            if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
                continue
            if (
                options.post_copy
                and not post_copy
                and stats.get("memory_iteration", 0) >= 2
                and not aborted.is_set()
            ):
                with contextlib.suppress(libvirt.libvirtError):
                    dom.migrateStartPostCopy(0)
                    post_copy = True
            if on_progress is not None and callback_error is None:
                try:
                    on_progress(progress_from_stats(stats, post_copy))
                except Exception as err:  # the migration must not go on unwatched
                    callback_error = err
                    with contextlib.suppress(libvirt.libvirtError):
                        dom.abortJob()
            if (
                options.timeout_seconds is not None
                and not timed_out
                and not post_copy
                and time.monotonic() - started > options.timeout_seconds
            ):
                timed_out = True
                with contextlib.suppress(libvirt.libvirtError):
                    dom.abortJob()
        wall_ms = (time.monotonic() - started) * 1000
        error = outcome[0] if outcome else RuntimeError("migration thread ended without result")
        if error is not None:
            if aborted.is_set():
                raise MigrationCancelled(uid=uid) from error
            if timed_out:
                raise MigrationFailed(
                    uid=uid, reason=f"timed out after {options.timeout_seconds} s"
                ) from error
            if callback_error is not None:
                raise MigrationFailed(
                    uid=uid, reason=f"progress callback failed: {callback_error!r}"
                ) from callback_error
            message = (
                error.get_error_message() if isinstance(error, libvirt.libvirtError) else str(error)
            )
            raise MigrationFailed(uid=uid, reason=message) from error
        try:
            stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except libvirt.libvirtError:
            stats = {}
        return result_from_stats(stats, wall_ms)

    def abort_migration(self, uid: str) -> None:
        aborted = self._migrations.get(uid)
        if aborted is None:
            self._lookup(uid)  # GuestNotFound when there is no such guest
            return
        aborted.set()  # the thread watching the migration aborts the job within a poll

    def cleanup_incoming(self, uid: str) -> None:
        if not is_valid_uid(uid):
            return
        with self._guest_lock(uid):
            try:
                dom = self._find(uid)
            except GuestAlreadyExists:
                dom = None  # a foreign domain of that name: not ours
            if dom is not None:
                persistent = self._call(uid, "read definition", dom.isPersistent)
                if persistent:
                    state = self._dom_state(dom, uid)
                    raise InvalidGuestState(
                        uid=uid, state=state.value, action="clean up incoming (it arrived)"
                    )
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()  # a transient incoming domain goes away with it
            guest_dir = self._guest_dir(uid)
            if (guest_dir / _INCOMING_MARK).exists():
                shutil.rmtree(guest_dir, ignore_errors=True)
            else:  # shared storage: the files are the source's guest's
                (guest_dir / _SHARED_TOKEN_FILE).unlink(missing_ok=True)

    # ---- volumes (kumo.drivers.compute.libvirt_disks does the libvirt side) ---------------

    def attached_nics(self, uid: str) -> set[str]:
        return libvirt_nics.attached(self._lookup(uid))

    def attach_nic(self, uid: str, nic: GuestNic) -> None:
        with self._guest_lock(uid):
            libvirt_nics.attach(self._lookup(uid), nic)

    def detach_nic(self, uid: str, mac_address: str) -> None:
        with self._guest_lock(uid):
            libvirt_nics.detach(self._lookup(uid), mac_address)

    def attached_volumes(self, uid: str) -> set[str]:
        dom = self._lookup(uid)
        return {s for s in libvirt_disks.attached(dom) if s != ROOT_DISK_SERIAL}

    def attach_volume(self, uid: str, disk: VolumeDisk) -> None:
        with self._guest_lock(uid):
            dom = self._lookup(uid)
            libvirt_disks.attach(
                dom,
                disk.source,
                disk.serial,
                read_only=disk.read_only,
                secret_uuid=self._secret_for(disk),
                limits=disk.limits,
            )

    def detach_volume(self, uid: str, serial: str) -> None:
        with self._guest_lock(uid):
            libvirt_disks.detach(self._lookup(uid), serial)

    def resize_volume(self, uid: str, serial: str, size_bytes: int) -> None:
        with self._guest_lock(uid):
            libvirt_disks.grow(self._lookup(uid), serial, size_bytes)

    def close(self) -> None:
        self._drop_connection()


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"
