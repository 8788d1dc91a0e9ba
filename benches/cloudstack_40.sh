#!/usr/bin/env bash
# `box up --no-connect` and `box destroy --force` of 40 machines against 1,
# side by side on one cloudstack-sim with D-long jobs (issue 14 §6: 40 in at
# most 1.5x the time of 1, at most 10 API calls per machine). Each size is
# timed R times (medians); calls are counted from one `-vv` run of each.
#   benches/cloudstack_40.sh [D] [R]     (D default 3s, R default 3)
set -euo pipefail
D=${1:-3s}
R=${2:-3}
N=40
. "$(dirname "$0")/lib/sim.sh" "$D"

for n in 1 $N; do
    mkdir -p "$work/p$n"
    {
        printf '[project]\nname = "bench%d"\nprovider = "cloudstack"\n\n' "$n"
        printf '[cloudstack]\nzone = "Sim-Advanced"\ntemplate = "Debian 12"\n'
        printf 'service_offering = "Small Instance"\nallow_from = ["127.0.0.0/8"]\n'
        for i in $(seq 1 "$n"); do printf '\n[[machine]]\nname = "m%d"\n' "$i"; done
    } > "$work/p$n/Boxfile"
done

now() { date +%s.%N; }
# The elapsed seconds of one command (which must succeed).
timed() {
    local t0 t1
    t0=$(now)
    "$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2 || true; exit 1; }
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f\n", b-a}'
}
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

# Calls per machine, from one logged run of each size.
declare -A up_calls down_calls
for n in 1 $N; do
    "$box" -C "$work/p$n" -vv up --no-connect 2> "$work/up$n.log" > /dev/null
    "$box" -C "$work/p$n" -vv destroy --force 2> "$work/down$n.log" > /dev/null
    up_calls[$n]=$(grep -c '^api: ' "$work/up$n.log" || true)
    down_calls[$n]=$(grep -c '^api: ' "$work/down$n.log" || true)
    for phase in up down; do
        log=$work/$phase$n.log
        printf '%-7s %2d machine(s): %4d calls (%d queryAsyncJobResult, %d listAsyncJobs), %.1f per machine\n' \
            "$phase" "$n" "$(grep -c '^api: ' "$log" || true)" \
            "$(grep -c '^api: .*queryAsyncJobResult' "$log" || true)" \
            "$(grep -c '^api: .*listAsyncJobs' "$log" || true)" \
            "$(awk -v c="$(grep -c '^api: ' "$log" || true)" -v n="$n" 'BEGIN{print c/n}')"
    done
done

for n in 1 $N; do : > "$work/tup$n"; : > "$work/tdown$n"; done
for _ in $(seq "$R"); do
    for n in 1 $N; do
        timed "$box" -C "$work/p$n" -q up --no-connect >> "$work/tup$n"
        timed "$box" -C "$work/p$n" -q destroy --force >> "$work/tdown$n"
    done
done
up1=$(median < "$work/tup1"); upN=$(median < "$work/tup$N")
dn1=$(median < "$work/tdown1"); dnN=$(median < "$work/tdown$N")
echo
echo "job duration $D, median of $R runs"
printf 'up:      1 machine %6.2fs   %d machines %6.2fs   ratio %.2f (goal <= 1.5)\n' "$up1" "$N" "$upN" "$(awk -v a="$upN" -v b="$up1" 'BEGIN{print a/b}')"
printf 'destroy: 1 machine %6.2fs   %d machines %6.2fs   ratio %.2f (goal <= 1.5)\n' "$dn1" "$N" "$dnN" "$(awk -v a="$dnN" -v b="$dn1" 'BEGIN{print a/b}')"
printf 'calls per machine at %d: up %.1f, destroy %.1f, together %.1f (goal <= 10)\n' "$N" \
    "$(awk -v c="${up_calls[$N]}" -v n="$N" 'BEGIN{print c/n}')" \
    "$(awk -v c="${down_calls[$N]}" -v n="$N" 'BEGIN{print c/n}')" \
    "$(awk -v c="${up_calls[$N]}" -v d="${down_calls[$N]}" -v n="$N" 'BEGIN{print (c+d)/n}')"
