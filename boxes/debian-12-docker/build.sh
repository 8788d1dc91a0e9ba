#!/bin/sh
# Builds the debian-12-docker box: debian-12's recipe (base.sh, the same
# script as boxes/debian-12/build.sh) with Docker's packages added to the
# image and customize.sh run inside its customize hook.
#
# Usage: build.sh OUTDIR (the environment of base.sh applies; the disk is
# 4G by default, as images and containers need room).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# docker.io: the engine, containerd, runc and the CLI; docker-compose:
# Compose from Debian (v1); busybox-static: the base image box/busybox, so
# images build with no registry; iptables: Docker's networking (a docker.io
# dependency, named so a change of recommends cannot drop it); apparmor:
# the Debian kernel enables AppArmor, and dockerd then needs apparmor_parser
# to load its docker-default profile for every container (a recommends).
BOX_EXTRA_PACKAGES=docker.io,docker-compose,busybox-static,iptables,apparmor${BOX_EXTRA_PACKAGES:+,$BOX_EXTRA_PACKAGES}
BOX_EXTRA_CUSTOMIZE=$here/customize.sh
BOX_DISK_SIZE=${BOX_DISK_SIZE:-4G}
export BOX_EXTRA_PACKAGES BOX_EXTRA_CUSTOMIZE BOX_DISK_SIZE
exec sh "$here/base.sh" "$@"
