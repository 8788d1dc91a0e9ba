#!/usr/bin/env bash
# Benchmark of suspend and resume on the local QEMU provider (issue 14 §1).
#
# In one run, on one machine: a cold `box up` (a fresh machine) to SSH-ready
# against `box up` of the same machine after `box suspend`, to SSH-ready.
# `box up` returns once it has logged in over SSH, so both times end at the
# same point. Also reports the time `box suspend` took and the size of the
# saved state. Goal: resume / cold boot <= 0.1.
#
# Usage: benches/suspend_resume.sh [RUNS]   (default 1; each run is a cold
# boot, a suspend and a resume of a fresh machine)
# Needs: a built `box` (cargo build), qemu-system-x86_64, qemu-img, and the
# debian-12 box (tests build it into /var/cache/box-tests/boxes).
# Always TCG and isolated: timings are TCG timings.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-1}
BOX=${BOX:-$PWD/target/debug/box}
export BOX_BOXES_DIR=${BOX_BOXES_DIR:-/var/cache/box-tests/boxes}
export BOX_QEMU_ACCEL=tcg BOX_ISOLATED=1 NO_COLOR=1
work=$(mktemp -d /tmp/box-bench.XXXXXX)
export BOX_HOME=$work/home
cleanup() {
    (cd "$work/p" 2>/dev/null && "$BOX" destroy --force >/dev/null 2>&1) || true
    rm -rf "$work"
}
trap cleanup EXIT

[ -x "$BOX" ] || { echo "build box first: cargo build" >&2; exit 1; }
ls "$BOX_BOXES_DIR"/debian-12/*/local/box.json >/dev/null 2>&1 \
    || { echo "no debian-12 box in $BOX_BOXES_DIR: run the local tests or 'box box build boxes/debian-12'" >&2; exit 1; }

mkdir -p "$work/p" "$work/home"
printf '[project]\nname = "bench"\n\n[defaults]\nbox = "debian-12"\ncpus = 1\nmemory = 512\n\n[local]\nisolated = true\n\n[[machine]]\nname = "a"\n' \
    > "$work/p/Boxfile"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
in_project() { (cd "$work/p" && "$BOX" -q "$@"); }

cold=()
resume=()
suspend=()
saved_mib=()
for run in $(seq 1 "$RUNS"); do
    in_project destroy --force >/dev/null 2>&1 || true
    t0=$(now); in_project up a; t1=$(now)
    cold+=("$(echo "$t1 - $t0" | bc)")
    # Something to come back to: a process started before the suspend.
    in_project ssh a -c 'nohup sleep 10000 >/dev/null 2>&1 &'
    t0=$(now); in_project suspend a; t1=$(now)
    suspend+=("$(echo "$t1 - $t0" | bc)")
    saved_mib+=("$(echo "scale=1; $(stat -c %s "$work/p/.box/machines/a/suspend.state") / 1048576" | bc)")
    t0=$(now); in_project up a; t1=$(now)
    resume+=("$(echo "$t1 - $t0" | bc)")
    in_project ssh a -c 'pgrep -x sleep >/dev/null' || { echo "run $run: the process did not survive the resume" >&2; exit 1; }
    echo "run $run: cold up ${cold[-1]}s, suspend ${suspend[-1]}s (saved state ${saved_mib[-1]} MiB), resumed up ${resume[-1]}s" >&2
done

cold_med=$(printf '%s\n' "${cold[@]}" | median)
resume_med=$(printf '%s\n' "${resume[@]}" | median)
suspend_med=$(printf '%s\n' "${suspend[@]}" | median)
echo "suspend/resume benchmark (TCG, isolated, 1 vCPU, 512 MiB, $RUNS run(s), medians)"
printf 'anchor  cold box up to SSH-ready:               %8.1f s\n' "$cold_med"
printf 'box     box up of the suspended machine:        %8.1f s\n' "$resume_med"
printf 'ratio   resume / cold boot:                     %8.3f  (goal <= 0.1)\n' \
    "$(echo "$resume_med / $cold_med" | bc -l)"
printf 'box     box suspend:                            %8.1f s, saved state %s MiB\n' \
    "$suspend_med" "${saved_mib[*]}"
