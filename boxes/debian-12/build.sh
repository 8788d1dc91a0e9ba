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
# puppet, chef, salt, landscape, byobu, GRUB, locales, rsyslog) and without
# the host key fingerprints on the console (box pins the host key itself):
# under TCG every module costs boot time.
cloud_init_modules:
 - migrator
 - seed_random
 - bootcmd
 - write-files
 - growpart
 - resizefs
 - disk_setup
 - mounts
 - set_hostname
 - update_hostname
 - update_etc_hosts
 - ca-certs
 - users-groups
 - ssh
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
  # (getty@tty1: box's machines have no screen, only the serial console.)
  for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_reap.service e2scrub_all.timer \
    getty@tty1.service systemd-network-generator.service; do
    systemctl --root="$root" disable "$unit" >/dev/null 2>&1 || true
  done
  # Early units for what no box feature uses (debugfs, tracefs, hugetlbfs,
  # configfs, DRM, EFI pstore). Under TCG each costs a process at the
  # busiest moment of the boot, beside cloud-init. The modules still load
  # on demand (loop, dm_mod, fuse through their /dev nodes); `mount -t
  # debugfs none /sys/kernel/debug` mounts one by hand. (binfmt_misc stays:
  # qemu-user, e.g. for Docker's multi-platform builds, registers with it.)
  for unit in sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount dev-hugepages.mount \
    modprobe@drm.service modprobe@efi_pstore.service modprobe@configfs.service \
    modprobe@dm_mod.service modprobe@loop.service modprobe@fuse.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # Generators systemd runs one after another before starting any unit, for
  # disk setups box's machines never have (encrypted, integrity or verity
  # volumes, GPT auto-discovery, hibernation, offline updates, systemd.run=).
  mkdir -p "$root/etc/systemd/system-generators"
  for gen in systemd-cryptsetup-generator systemd-integritysetup-generator systemd-veritysetup-generator \
    systemd-gpt-auto-generator systemd-hibernate-resume-generator systemd-system-update-generator \
    systemd-run-generator; do
    ln -sf /dev/null "$root/etc/systemd/system-generators/$gen"
  done
  # Modules udev would load for the emulated CPU's features: KVM (nested
  # virtualisation, the biggest module) and the kernel's accelerated crypto
  # (sshd and TLS use OpenSSL's own). Loading them, with the crypto
  # self-tests, costs seconds under TCG while cloud-init starts. Blacklisted
  # only for autoloading: `modprobe kvm_intel` still loads one by name.
  mkdir -p "$root/etc/modprobe.d"
  for mod in kvm kvm_intel kvm_amd irqbypass aesni_intel ghash_clmulni_intel sha1_ssse3 sha256_ssse3 \
    sha512_ssse3 crct10dif_pclmul crc32_pclmul polyval_clmulni; do
    echo "blacklist $mod"
  done > "$root/etc/modprobe.d/box-boot.conf"
  # Under TCG the one emulated CPU is shared by everything that starts at
  # boot. cloud-init's first two stages are the way to SSH-ready: they get
  # a larger share. Its last two run beside sshd and box's first login and
  # need not finish before them: a smaller share (their leftover processes,
  # e.g. a daemon a runcmd starts, keep it; it only matters when the CPU
  # is busy).
  for unit in cloud-init-local.service:1000 cloud-init.service:1000 cloud-config.service:20 cloud-final.service:20; do
    mkdir -p "$root/etc/systemd/system/${unit%:*}.d"
    printf '[Service]\nCPUWeight=%s\n' "${unit#*:}" > "$root/etc/systemd/system/${unit%:*}.d/10-box.conf"
  done

  mkdir -p "$root/etc/ssh/sshd_config.d"
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n' \
    > "$root/etc/ssh/sshd_config.d/10-box.conf"
  # cloud-init's set-passwords writes box's `ssh_pwauth: false` into this
  # file and restarts sshd when that changes it: seconds after box has
  # logged in, refusing connections meanwhile. With the value already there
  # it leaves sshd alone.
  printf 'PasswordAuthentication no\n' > "$root/etc/ssh/sshd_config.d/50-cloud-init.conf"
  chmod 600 "$root/etc/ssh/sshd_config.d/50-cloud-init.conf"
  # sshd checks its configuration as it starts anyway; the separate
  # `sshd -t` run before it is one more sshd start on the way to SSH-ready.
  mkdir -p "$root/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\n' > "$root/etc/systemd/system/ssh.service.d/10-box.conf"
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

# Runs as mmdebstrap's essential hook, before the kernel is installed, so
# its initramfs is made once, the small way.
initramfs() {
  root=$1
  mkdir -p "$root/etc/initramfs-tools/conf.d"
  # Only what mounts the root: virtio-pci and virtio-blk (ext4 is built into
  # the cloud kernel). The real root's udev loads everything else. No
  # resume: box's machines have no swap. No udev in the initramfs: the
  # kernel's devtmpfs makes /dev/vda as soon as virtio-blk finds it.
  printf 'MODULES=list\nCOMPRESS=gzip\nRESUME=none\n' > "$root/etc/initramfs-tools/conf.d/box"
  mkdir -p "$root/etc/initramfs-tools"
  printf 'virtio_pci\nvirtio_blk\n' > "$root/etc/initramfs-tools/modules"
  # udev's initramfs parts, diverted before udev is installed, so they are
  # never part of an initramfs (the real root's udev is untouched).
  mkdir -p "$root/usr/share/initramfs-tools-box-disabled"
  for f in hooks/udev scripts/init-top/udev scripts/init-bottom/udev; do
    chroot "$root" dpkg-divert --quiet --local --no-rename --add \
      --divert "/usr/share/initramfs-tools-box-disabled/$(echo "$f" | tr / -)" \
      "/usr/share/initramfs-tools/$f"
  done
}

if [ "${1:-}" = "--initramfs" ]; then
  initramfs "$2"
  exit 0
fi

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
  --essential-hook="sh '$self' --initramfs \"\$1\"" \
  --customize-hook="sh '$self' --customize \"\$1\" '$out' '$size' '$extra'" \
  "$suite" /dev/null
if [ -n "${BOX_DEBIAN_MIRROR:-}" ]; then
  set -- "$@" "$BOX_DEBIAN_MIRROR"
fi
mmdebstrap "$@"

qemu-img convert -O qcow2 "$out/root.img" "$out/disk.qcow2"
rm -f "$out/root.img"
echo "built $out/disk.qcow2"
