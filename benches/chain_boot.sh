#!/usr/bin/env bash
# Benchmark of dependency chains on the local QEMU provider (issue 14 §2).
#
# Cold `box up` of one machine against a cold `box up` of a 3-machine chain
# (`c` depends on `b`, `b` on `a`), side by side in one run. Every machine
# has one small provisioner, so the chain really waits: `b` provisions after
# `a`, `c` after `b`. Each `box up` starts from nothing (no overlay, no
# seed) and ends once every machine is provisioned. Goal: chain / one <= 1.3
# (machines boot at once; before, each booted after the one before it).
#
# Usage: benches/chain_boot.sh [RUNS]   (default 1; each run is 1 + 3 boots)
# Needs: a built `box` (cargo build), qemu-system-x86_64, qemu-img, and the
# debian-12 box (tests build it into /var/cache/box-tests/boxes).
# Always TCG and isolated: timings are TCG timings. On a 2-core host the
# three guests share the cores, so the chain's boots are slower than one.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-1}
BOX=${BOX:-$PWD/target/debug/box}
export BOX_BOXES_DIR=${BOX_BOXES_DIR:-/var/cache/box-tests/boxes}
export BOX_QEMU_ACCEL=tcg BOX_ISOLATED=1 NO_COLOR=1
work=$(mktemp -d /tmp/box-bench.XXXXXX)
export BOX_HOME=$work/home
cleanup() {
    for p in "$work/one" "$work/chain"; do
        (cd "$p" 2>/dev/null && "$BOX" destroy --force >/dev/null 2>&1) || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

[ -x "$BOX" ] || { echo "build box first: cargo build" >&2; exit 1; }
ls "$BOX_BOXES_DIR"/debian-12/*/local/box.json >/dev/null 2>&1 \
    || { echo "no debian-12 box in $BOX_BOXES_DIR: run the local tests or 'box box build boxes/debian-12'" >&2; exit 1; }

mkdir -p "$work/one" "$work/chain" "$work/home"
header() {
    printf '[project]\nname = "%s"\n\n[defaults]\nbox = "debian-12"\ncpus = 1\nmemory = 512\n\n[local]\nisolated = true\n' "$1"
}
# machine NAME [DEPENDENCY]
machine() {
    printf '\n[[machine]]\nname = "%s"\n' "$1"
    [ -n "${2:-}" ] && printf 'depends_on = ["%s"]\n' "$2"
    printf '\n[[machine.provision]]\nname = "mark"\nshell = "echo %s > /var/tmp/mark"\n' "$1"
}
{ header one; machine a; } > "$work/one/Boxfile"
{ header chain; machine c b; machine b a; machine a; } > "$work/chain/Boxfile"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# When each machine's QEMU started, in seconds after t0 (10 ms resolution):
# the evidence that the chain's VMs boot together.
qemu_starts() {
    python3 - "$1" "$2" <<'PY'
import glob, json, os, sys, time
project, t0 = sys.argv[1], float(sys.argv[2])
uptime = float(open("/proc/uptime").read().split()[0])
out = []
for f in sorted(glob.glob(f"{project}/.box/machines/*.json")):
    pid = json.load(open(f))["provider_data"]["pid"]
    ticks = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19])
    started = time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    out.append(f"{os.path.basename(f)[:-5]} +{started - t0:.1f}s")
print(", ".join(out))
PY
}
cold_up() {
    (cd "$1" && "$BOX" destroy --force >/dev/null 2>&1 || true)
    local t0 t1
    t0=$(now)
    (cd "$1" && "$BOX" -q up) || { echo "box up failed in $1" >&2; exit 1; }
    t1=$(now)
    echo "  $(basename "$1"): QEMU started at $(qemu_starts "$1" "$t0")" >&2
    (cd "$1" && "$BOX" -q destroy --force)
    echo "$t1 - $t0" | bc
}

one_times=()
chain_times=()
for run in $(seq 1 "$RUNS"); do
    # Alternate which goes first, so a drift in host load hits both alike.
    if [ $((run % 2)) -eq 1 ]; then
        one_times+=("$(cold_up "$work/one")")
        chain_times+=("$(cold_up "$work/chain")")
    else
        chain_times+=("$(cold_up "$work/chain")")
        one_times+=("$(cold_up "$work/one")")
    fi
    echo "run $run: one machine ${one_times[-1]}s, chain of 3 ${chain_times[-1]}s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done

one_med=$(printf '%s\n' "${one_times[@]}" | median)
chain_med=$(printf '%s\n' "${chain_times[@]}" | median)
echo "chain boot benchmark (TCG, isolated, 1 vCPU, 512 MiB each, $(nproc) host cores, $RUNS run(s), medians)"
printf 'anchor  cold box up, 1 machine, provisioned:             %8.1f s\n' "$one_med"
printf 'box     cold box up, chain c -> b -> a, provisioned:     %8.1f s\n' "$chain_med"
printf 'ratio   chain / one:                                     %8.3f  (goal <= 1.3)\n' \
    "$(echo "$chain_med / $one_med" | bc -l)"
