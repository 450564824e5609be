#!/usr/bin/env bash
# scripts/install.sh [--test]: install what Kumo needs on Debian 12, non-interactively.
#
#   base:    python3, python3-venv; libvirt + QEMU (libvirtd, its QEMU driver, virsh, qemu-img),
#            the tiny guest image's tools (syslinux, mtools, dosfstools, cpio), gcc, python3-dev,
#            libvirt-dev and pkg-config (libvirt-python compiles) (apt); the `libvirt-qemu` user
#            libvirtd wants; .venv with `pip install -e '.[dev]'`; the test guest image
#            build/images/kumo-tiny.qcow2 (scripts/build-image); OVN central + host and
#            Open vSwitch (ovn-central ovn-host openvswitch-switch) and iproute2 for networking
#   --test:  also git, openssh-client (ssh-keygen), postgresql (binaries only), nodejs + npm,
#            busybox-static (udhcpc, ping), ethtool (apt); buf pinned from npm into build/node;
#            Ceph (ceph-mon, ceph-osd, ceph-common, python3-rbd, python3-rados) and
#            qemu-block-extra for the block storage tests, with Debian's rados/rbd modules
#            symlinked into .venv
#
# Idempotent: apt runs only when a package is missing (at most one `apt-get update`), pip only
# when pyproject.toml changed since the last install (.venv/.kumo-installed holds its sha256),
# npm only when buf is not already at BUF_VERSION, the image only when its recipe changed. A
# second run on a ready machine takes seconds. No service is started (a policy-rc.d keeps the
# packages' services down while apt runs): the tests and `kumo up` run their own daemons.
# Every dependency but libvirt-python installs from a binary wheel.
set -euo pipefail

BUF_VERSION=1.75.0
PG_BIN=/usr/lib/postgresql/15/bin

usage() { sed -n '2,21s/^# \{0,1\}//p' "$0"; }
with_test=0
for arg in "$@"; do
  case $arg in
    --test) with_test=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: ERROR: %s\n' "$*" >&2; exit 1; }
start=$SECONDS
took=()  # what ran, with its duration, for the last line

# ---- apt ---------------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
sudo=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then sudo=(sudo); fi

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

missing=()
# need PACKAGE [COMMAND]: PACKAGE is needed unless installed (or COMMAND already on PATH, e.g. a
# nodejs from another source that brings its own npm).
need() {
  if [ $# -gt 1 ] && command -v "$2" >/dev/null; then return; fi
  pkg_installed "$1" || missing+=("$1")
}
need python3
need python3-venv
# compute: libvirtd + QEMU (TCG is enough), libvirt-python's build, the guest image's tools
for pkg in libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config \
  qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools cpio gcc python3-dev; do
  need "$pkg"
done
# network: OVN central (NB/SB ovsdb-server, northd), ovn-controller, OVS (userspace datapath);
# iproute2 for the chassis' network namespace and the agent's taps
for pkg in ovn-central ovn-host openvswitch-switch; do
  need "$pkg"
done
need iproute2 ip
if [ "$with_test" = 1 ]; then
  need git git
  need openssh-client ssh-keygen
  need postgresql
  need nodejs node
  need npm npm
  # network traffic tests: DHCP client and ping (busybox), ethtool (checksum offload)
  need busybox-static
  need ethtool ethtool
  # block storage tests: a throwaway single-node Ceph (mon + memstore OSD) and its Python
  # bindings; qemu-block-extra carries QEMU's rbd driver (guests attach RBD as network disks)
  for pkg in ceph-mon ceph-osd ceph-common python3-rbd python3-rados qemu-block-extra; do
    need "$pkg"
  done
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
    die "missing Debian packages (${missing[*]}); run as root or install sudo"
  fi
  # (sudo resets the environment: pass DEBIAN_FRONTEND on the command line)
  apt_get=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
  say "apt: installing ${missing[*]}"
  # Keep every service the packages ship (postgresql, openvswitch-switch, ovn-central, ovn-host,
  # ceph) from starting: the tests and `kumo up` run their own daemons. A temporary
  # policy-rc.d, removed on exit (only if there was none).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    trap '"${sudo[@]}" rm -f "$policy"' EXIT
  fi
  t=$SECONDS
  "${apt_get[@]}" update >/dev/null || die "apt-get update failed"
  "${apt_get[@]}" install --no-install-recommends "${missing[@]}" >/dev/null ||
    die "apt-get install ${missing[*]} failed"
  if [[ " ${missing[*]} " == *" postgresql "* ]]; then
    # The tests start their own servers; stop any cluster the package may have started.
    if command -v pg_lsclusters >/dev/null; then
      pg_lsclusters -h 2>/dev/null | while read -r ver name _ status _; do
        if [ "$status" = online ]; then
          say "stopping PostgreSQL cluster $ver/$name started by the package"
          "${sudo[@]}" pg_ctlcluster "$ver" "$name" stop || true
        fi
      done
    fi
  fi
  took+=("apt $((SECONDS - t))s")
fi
# libvirtd (as root) refuses to start without the user its packaged config names; the
# libvirt-daemon-system package that would create it is not installed (it brings services).
if ! getent passwd libvirt-qemu >/dev/null; then
  if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
    die "user libvirt-qemu is missing; run as root or install sudo"
  fi
  say "creating system user and group libvirt-qemu"
  getent group libvirt-qemu >/dev/null || "${sudo[@]}" groupadd --system libvirt-qemu
  "${sudo[@]}" useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
    --shell /usr/sbin/nologin libvirt-qemu
fi
if [ "$with_test" = 1 ] && [ ! -x "$PG_BIN/postgres" ]; then
  die "PostgreSQL 15 server binaries not found in $PG_BIN"
fi

# ---- buf (npm) ---------------------------------------------------------------------------------
if [ "$with_test" = 1 ]; then
  buf=build/node/node_modules/.bin/buf
  if [ "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
    say "npm: installing @bufbuild/buf@$BUF_VERSION into build/node"
    t=$SECONDS
    mkdir -p build/node
    # node ignores the system CA store unless told; trust it as apt, pip and git do.
    if [ -z "${NODE_EXTRA_CA_CERTS:-}" ] && [ -r /etc/ssl/certs/ca-certificates.crt ]; then
      export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
    fi
    npm install --prefix build/node --no-audit --no-fund --loglevel=error \
      "@bufbuild/buf@$BUF_VERSION" >/dev/null || die "npm install @bufbuild/buf@$BUF_VERSION failed"
    [ "$("$buf" --version 2>/dev/null)" = "$BUF_VERSION" ] || die "buf $BUF_VERSION does not run"
    took+=("npm $((SECONDS - t))s")
  fi
fi

# ---- Python virtualenv -------------------------------------------------------------------------
if ! .venv/bin/python -c '' 2>/dev/null; then
  command -v python3 >/dev/null || die "python3 not found on PATH"
  say "venv: creating .venv with $(command -v python3) ($(python3 -V 2>&1))"
  rm -rf .venv
  python3 -m venv .venv || die "python3 -m venv failed (is python3-venv installed?)"
fi
stamp=.venv/.kumo-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "pip: installing kumo and its dev extras into .venv (editable)"
  t=$SECONDS
  rm -f "$stamp"
  .venv/bin/pip install -q -e '.[dev]' || die "pip install -e '.[dev]' failed"
  echo "$want" >"$stamp"
  took+=("pip $((SECONDS - t))s")
fi

# ---- Ceph bindings (Debian's rados/rbd modules; there are none on PyPI) ----------------------
# Symlinked into the venv's site-packages when Debian's python3-rados/python3-rbd are installed
# (only --test installs them; Ceph is optional for `kumo up`). Idempotent: ln -sfn.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for so in /usr/lib/python3/dist-packages/rados.cpython-*.so /usr/lib/python3/dist-packages/rbd.cpython-*.so; do
  if [ -e "$so" ]; then ln -sfn "$so" "$site/$(basename "$so")"; fi
done

# ---- tiny guest image (scripts/build-image: no-op when up to date) ----------------------------
t=$SECONDS
image_json=build/images/kumo-tiny.json
before=$(stat -c '%i %Y' "$image_json" 2>/dev/null || echo none)
if ! scripts/build-image | { grep -v ' is up to date$' || true; }; then
  die "scripts/build-image failed"
fi
if [ "$(stat -c '%i %Y' "$image_json" 2>/dev/null || echo none)" != "$before" ]; then
  took+=("image $((SECONDS - t))s")
fi

if [ ${#took[@]} -eq 0 ]; then
  say "ready in $((SECONDS - start))s (nothing to install)"
else
  say "ready in $((SECONDS - start))s ($(IFS=,; echo "${took[*]}" | sed 's/,/, /g'))"
fi
