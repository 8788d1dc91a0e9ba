#!/bin/sh
# Builds the debian-12-postgres box: debian-12's recipe (base.sh, the same
# script as boxes/debian-12/build.sh) with PostgreSQL added to the image.
#
# Usage: build.sh OUTDIR (the environment of base.sh applies).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# postgresql: the server (postgresql-15), its client and Debian's cluster
# tools; the package makes the cluster 15/main. python3-psycopg2 lets
# Ansible's PostgreSQL modules work for users who prefer them.
BOX_EXTRA_PACKAGES=postgresql,python3-psycopg2${BOX_EXTRA_PACKAGES:+,$BOX_EXTRA_PACKAGES}
export BOX_EXTRA_PACKAGES
exec sh "$here/base.sh" "$@"
