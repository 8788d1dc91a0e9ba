#!/usr/bin/env bash
# `box up --no-connect` of 10 machines against 1, on cloudstack-sim (state
# only) with a fixed job duration D. The anchor is the 1-machine run: the
# issue asks for 10 machines in at most ~1.5x its time (vagrant-cloudstack
# brings machines up one after another, so ~10x). Also reports the API
# calls per machine, counted from the `-vv` log.
#   benches/cloudstack_up.sh [D]      (D default 1s; needs hyperfine)
set -euo pipefail
D=${1:-1s}
repo=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p cloudstack-sim --bin cloudstack-sim
box=$repo/target/release/box
sim=$repo/target/release/cloudstack-sim

work=$(mktemp -d)
sim_pid=
cleanup() {
    if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

CLOUDSTACK_SIM_SECRET_KEY=bench-secret "$sim" --listen 127.0.0.1:0 --api-key bench-key \
    --job-duration "$D" > "$work/sim.out" 2>/dev/null &
sim_pid=$!
for _ in $(seq 50); do
    grep -q listening "$work/sim.out" 2>/dev/null && break
    sleep 0.1
done
export CLOUDSTACK_API_URL=$(sed 's/^listening on //' "$work/sim.out")
export CLOUDSTACK_API_KEY=bench-key CLOUDSTACK_SECRET_KEY=bench-secret BOX_HOME=$work/home

for n in 1 10; do
    mkdir -p "$work/p$n"
    {
        printf '[project]\nname = "bench%d"\nprovider = "cloudstack"\n\n' "$n"
        printf '[cloudstack]\nzone = "Sim-Advanced"\ntemplate = "Debian 12"\n'
        printf 'service_offering = "Small Instance"\nallow_from = ["127.0.0.0/8"]\n'
        for i in $(seq 1 "$n"); do printf '\n[[machine]]\nname = "m%d"\n' "$i"; done
    } > "$work/p$n/Boxfile"
done

# Calls per machine, from one logged run of each size.
for n in 1 10; do
    "$box" -C "$work/p$n" -vv up --no-connect --parallel 10 2> "$work/log$n"
    calls=$(grep -c '^api: ' "$work/log$n")
    polls=$(grep -c 'queryAsyncJobResult' "$work/log$n")
    echo "$n machine(s): $calls API calls ($polls of them job polls), $(awk -v c="$calls" -v n="$n" 'BEGIN{printf "%.1f", c/n}') per machine"
    "$box" -C "$work/p$n" destroy --force 2>/dev/null
done

hyperfine --runs 5 --export-markdown "$work/result.md" \
    --prepare "$box -C $work/p1 destroy --force >/dev/null 2>&1 || true; $box -C $work/p10 destroy --force >/dev/null 2>&1 || true" \
    -n "1 machine (anchor)" "$box -C $work/p1 -q up --no-connect" \
    -n "10 machines" "$box -C $work/p10 -q up --no-connect --parallel 10" \
    -n "10 machines, default --parallel 8" "$box -C $work/p10 -q up --no-connect"
cat "$work/result.md"
