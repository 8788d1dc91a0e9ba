#!/usr/bin/env bash
# Cold boot of two builds of the debian-12 box side by side: `box up` of one
# machine to SSH-ready (box up returns once it has logged in), with where the
# guest's time went in each boot: `systemd-analyze` (time, blame,
# critical-chain) and `cloud-init analyze` (show, blame).
#
# Usage: benches/boot_blame.sh BEFORE_STORE AFTER_STORE [RUNS]
#   BEFORE_STORE, AFTER_STORE: box stores (BOX_BOXES_DIR) that each hold a
#   debian-12 box, e.g. a copy of the test cache made before a recipe change
#   and a store the new recipe was built into:
#     BOX_BOXES_DIR=/tmp/after box box build boxes/debian-12
#   RUNS: boots of each (default 3). Each run boots the two at once, so the
#   (shared, noisy) host's load hits both alike; SEQUENTIAL=1 boots them one
#   after the other instead. Medians and the ratio after/before are printed; the
#   guest's lists go to $BOOT_BLAME_OUT (default: a new folder under /tmp),
#   one file per boot.
# Needs: a built `box` (cargo build), qemu-system-x86_64.
# Always TCG and isolated, 1 vCPU, 512 MiB: timings are TCG timings.
set -euo pipefail
cd "$(dirname "$0")/.."

before=${1:?usage: benches/boot_blame.sh BEFORE_STORE AFTER_STORE [RUNS]}
after=${2:?usage: benches/boot_blame.sh BEFORE_STORE AFTER_STORE [RUNS]}
RUNS=${3:-3}
BOX=${BOX:-$PWD/target/debug/box}
export BOX_QEMU_ACCEL=tcg BOX_ISOLATED=1 NO_COLOR=1
work=$(mktemp -d /tmp/box-blame.XXXXXX)
out=${BOOT_BLAME_OUT:-$(mktemp -d /tmp/box-blame-out.XXXXXX)}
mkdir -p "$out"
export BOX_HOME=$work/home

[ -x "$BOX" ] || { echo "build box first: cargo build" >&2; exit 1; }
for store in "$before" "$after"; do
    ls "$store"/debian-12/*/local/box.json >/dev/null 2>&1 ||
        { echo "no debian-12 box in $store" >&2; exit 1; }
done

cleanup() {
    for label in before after; do
        (cd "$work/$label" 2>/dev/null && BOX_BOXES_DIR=$(cat .store) "$BOX" destroy --force >/dev/null 2>&1) || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

for label in before after; do
    mkdir -p "$work/$label"
    printf '[project]\nname = "blame-%s"\n\n[defaults]\nbox = "debian-12"\ncpus = 1\nmemory = 512\n\n[local]\nisolated = true\n\n[[machine]]\nname = "a"\n' \
        "$label" > "$work/$label/Boxfile"
done
echo "$before" > "$work/before/.store"
echo "$after" > "$work/after/.store"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# One cold boot: writes the seconds from `box up` to logged in to
# $work/LABEL.time, and the guest's own account of the boot to
# $out/LABEL-runN.txt.
boot() {
    local label=$1 run=$2 store t0 t1
    store=$(cat "$work/$label/.store")
    cd "$work/$label"
    BOX_BOXES_DIR=$store "$BOX" destroy --force >/dev/null 2>&1 || true
    rm -f Boxfile.lock
    t0=$(now)
    BOX_BOXES_DIR=$store "$BOX" -q up a >&2
    t1=$(now)
    echo "$t1 - $t0" | bc > "$work/$label.time"
    {
        echo "# $label run $run: box up to SSH-ready $(cat "$work/$label.time") s ($store)"
        # The guest's own clock: once boot jobs are done (cloud-final
        # included), so wait for systemd to call the boot finished.
        BOX_BOXES_DIR=$store "$BOX" ssh a -- '
            systemctl is-system-running --wait >/dev/null 2>&1 || true
            echo "## systemd-analyze"; systemd-analyze
            echo "## systemd-analyze critical-chain ssh.service"; systemd-analyze critical-chain ssh.service
            echo "## systemd-analyze blame"; systemd-analyze blame
            echo "## cloud-init analyze show"; sudo cloud-init analyze show
            echo "## cloud-init analyze blame"; sudo cloud-init analyze blame
            echo "## kernel command line"; cat /proc/cmdline
            echo "## initramfs"; ls -l /boot/' 2>&1
    } > "$out/$label-run$run.txt"
    BOX_BOXES_DIR=$store "$BOX" -q destroy --force >&2
}


before_times=()
after_times=()
for run in $(seq 1 "$RUNS"); do
    if [ -n "${SEQUENTIAL:-}" ]; then
        boot before "$run"
        boot after "$run"
    else
        boot before "$run" &
        b_pid=$!
        boot after "$run" &
        a_pid=$!
        wait "$b_pid"
        wait "$a_pid"
    fi
    before_times+=("$(cat "$work/before.time")")
    after_times+=("$(cat "$work/after.time")")
    echo "run $run: before ${before_times[-1]} s, after ${after_times[-1]} s" >&2
done

b=$(printf '%s\n' "${before_times[@]}" | median)
a=$(printf '%s\n' "${after_times[@]}" | median)
echo "cold boot of debian-12 to SSH-ready (TCG, isolated, 1 vCPU, 512 MiB, $RUNS runs each, $([ -n "${SEQUENTIAL:-}" ] && echo "one after the other" || echo "both at once"), medians)"
printf 'before  %s: %8.1f s\n' "$before" "$b"
printf 'after   %s: %8.1f s\n' "$after" "$a"
printf 'ratio   after / before: %.3f\n' "$(echo "$a / $b" | bc -l)"
for label in before after; do
    f=$out/$label-run1.txt
    echo "$label, run 1: $(grep -m1 '^Startup finished' "$f" || echo 'no systemd-analyze line')"
    echo "  slowest units: $(sed -n '/^## systemd-analyze blame/,/^## /p' "$f" | sed -n '2,6p' | sed 's/^ *//' | paste -sd ';')"
done
echo "guest lists (blame, critical-chain, cloud-init): $out"
