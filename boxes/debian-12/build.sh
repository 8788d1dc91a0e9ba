#!/bin/sh
# Builds the debian-12 box from Debian packages alone, for hosts that reach a
# Debian mirror but not the wider internet, and for reproducible images.
#
# Usage: build.sh OUTDIR
# Writes OUTDIR/disk.qcow2 (a whole-disk ext4 root, no partition table, so no
# bootloader and no loop mounts are needed), OUTDIR/vmlinuz and
# OUTDIR/initrd.img for QEMU's direct kernel boot with
# `root=/dev/vda rw console=ttyS0`.
#
# Environment (all optional):
#   BOX_DEBIAN_MIRROR  apt mirror URL (default: mmdebstrap's own default)
#   BOX_DEBIAN_SUITE   default bookworm
#   BOX_DEBIAN_ARCH    default: the host's dpkg architecture
#   BOX_DISK_SIZE      virtual disk size, default 3G (the qcow2 stores only used blocks)
#
# Hook for derived boxes (a recipe that is this image plus more, e.g.
# debian-12-docker, runs this script with these set):
#   BOX_EXTRA_PACKAGES   comma-separated Debian packages added to --include
#   BOX_EXTRA_CUSTOMIZE  path of a shell script, run as `sh SCRIPT ROOT` inside
#                        mmdebstrap's customize hook after box's own changes and
#                        before the apt caches are emptied and the disk is made.
#                        It runs outside the image: use `chroot "$1" CMD` for
#                        commands that must run inside it.
set -eu

# Runs as mmdebstrap's customize hook, inside its namespace, so the files are
# seen owned by root in both root and unshare (rootless) modes.
customize() {
  root=$1 out=$2 size=$3 extra=$4

  mkdir -p "$root/etc/cloud/cloud.cfg.d"
  cat > "$root/etc/cloud/cloud.cfg.d/90-box.cfg" <<'CFG'
# box: NoCloud for the local provider; ConfigDrive and CloudStack for clouds.
datasource_list: [NoCloud, ConfigDrive, CloudStack, None]
ssh_pwauth: false
# sudo needs the machine's own name to resolve.
manage_etc_hosts: true
disable_root: true
system_info:
  network:
    renderers: [networkd]
# Debian's lists without the modules for tools this image lacks (snap, lxd,
# puppet, chef, salt, landscape, byobu, GRUB, locales): under TCG every
# module costs boot time.
cloud_config_modules:
 - set-passwords
 - apt-pipelining
 - apt-configure
 - ntp
 - timezone
 - disable-ec2-metadata
 - runcmd
cloud_final_modules:
 - package-update-upgrade-install
 - write-files-deferred
 - scripts-vendor
 - scripts-per-once
 - scripts-per-boot
 - scripts-per-instance
 - scripts-user
 - ssh-authkey-fingerprints
 - keys-to-console
 - phone-home
 - final-message
 - power-state-change
CFG

  # DHCP on every NIC unless cloud-init writes a more specific file.
  mkdir -p "$root/etc/systemd/network"
  cat > "$root/etc/systemd/network/80-box-dhcp.network" <<'NET'
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
  systemctl --root="$root" enable systemd-networkd.service >/dev/null 2>&1
  # Nothing to update in a throwaway machine; these only slow the boot.
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer; do
    systemctl --root="$root" disable "$unit" >/dev/null 2>&1 || true
  done

  mkdir -p "$root/etc/ssh/sshd_config.d"
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n' \
    > "$root/etc/ssh/sshd_config.d/10-box.conf"
  # Every machine gets its own host keys (cloud-init writes them at first boot).
  rm -f "$root"/etc/ssh/ssh_host_*

  printf 'LABEL=box-root / ext4 rw,discard,errors=remount-ro 0 1\n' > "$root/etc/fstab"
  printf 'localhost\n' > "$root/etc/hostname"
  printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
  # systemd makes a new machine id at first boot.
  : > "$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  # No passwords: root stays locked; users come from cloud-init with keys.
  sed -i 's/^root:[^:]*:/root:*:/' "$root/etc/shadow"

  if [ -n "$extra" ]; then
    sh "$extra" "$root"
  fi

  cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
  cp "$root"/boot/initrd.img-* "$out/initrd.img"

  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old

  # mmdebstrap has /proc, /sys and /dev mounted in the tree; a plain bind
  # mount shows the tree without them.
  view=$(mktemp -d)
  mount --bind "$root" "$view"
  rc=0
  mkfs.ext4 -q -F -L box-root -d "$view" "$out/root.img" "$size" || rc=$?
  umount "$view"
  rmdir "$view"
  return $rc
}

if [ "${1:-}" = "--customize" ]; then
  customize "$2" "$3" "$4" "${5:-}"
  exit 0
fi

out=${1:?usage: build.sh OUTDIR}
suite=${BOX_DEBIAN_SUITE:-bookworm}
arch=${BOX_DEBIAN_ARCH:-$(dpkg --print-architecture)}
size=${BOX_DISK_SIZE:-3G}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
mkdir -p "$out"
out=$(cd "$out" && pwd)
extra=
if [ -n "${BOX_EXTRA_CUSTOMIZE:-}" ]; then
  [ -f "$BOX_EXTRA_CUSTOMIZE" ] || { echo "build.sh: BOX_EXTRA_CUSTOMIZE=$BOX_EXTRA_CUSTOMIZE is not a file" >&2; exit 1; }
  extra=$(cd "$(dirname "$BOX_EXTRA_CUSTOMIZE")" && pwd)/$(basename "$BOX_EXTRA_CUSTOMIZE")
fi

# Debian's cloud kernel is the one its official cloud images use: virtio
# drivers built for VMs, without the hardware drivers a VM never needs.
case "$arch" in
  amd64) kernel=linux-image-cloud-amd64 ;;
  arm64) kernel=linux-image-cloud-arm64 ;;
  *) kernel=linux-image-$arch ;;
esac

packages="$kernel,initramfs-tools,systemd-sysv,udev,dbus,openssh-server,cloud-init,sudo,rsync,netbase,iproute2,ca-certificates,e2fsprogs"
if [ -n "${BOX_EXTRA_PACKAGES:-}" ]; then
  packages="$packages,$BOX_EXTRA_PACKAGES"
fi

set -- \
  --variant=minbase \
  --architectures="$arch" \
  --include="$packages" \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" && printf "MODULES=most\nCOMPRESS=gzip\n" > "$1/etc/initramfs-tools/conf.d/box"' \
  --customize-hook="sh '$self' --customize \"\$1\" '$out' '$size' '$extra'" \
  "$suite" /dev/null
if [ -n "${BOX_DEBIAN_MIRROR:-}" ]; then
  set -- "$@" "$BOX_DEBIAN_MIRROR"
fi
mmdebstrap "$@"

qemu-img convert -O qcow2 "$out/root.img" "$out/disk.qcow2"
rm -f "$out/root.img"
echo "built $out/disk.qcow2"
