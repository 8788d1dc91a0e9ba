#!/usr/bin/env bash
# `box api` and `box up` (CloudStack provider) against a hostile endpoint on
# loopback (tests/hostile_endpoint.py), one misbehaviour at a time: exit
# code, wall time and peak RSS (GNU time -v) of each run, against issue 10's
# target of a clear error within the configured time and at most 300 MB.
# Also a valid 200 MB list through `box api`, with the answer limit raised.
#
#   benches/hostile_endpoint.sh                  the release build of this checkout
#   BOX=/path/to/box benches/hostile_endpoint.sh another build (e.g. an older one)
#
# Settings used: BOX_CLOUDSTACK_TIMEOUT=10, BOX_CLOUDSTACK_JOB_TIMEOUT=10,
# the default answer limit. Safety nets only: each run is killed after
# KILL_AFTER seconds (default 600) and may map at most 4 GB (ulimit -v).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x /usr/bin/time ]; then
    echo "needs GNU time (Debian package \`time\`): apt-get install time" >&2
    exit 1
fi
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" -p cloudstack-sim --bin cloudstack-sim
box=${BOX:-$repo/target/release/box}
sim=$repo/target/release/cloudstack-sim
hostile=$repo/tests/hostile_endpoint.py
kill_after=${KILL_AFTER:-600}
target_mb=300

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a server whose first line is `listening on URL`; sets $url.
start() {
    local out=$work/server.$RANDOM
    "$@" > "$out" 2>/dev/null &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q '^listening on ' "$out" 2>/dev/null && break
        sleep 0.1
    done
    url=$(sed -n 's/^listening on //p' "$out")
    [ -n "$url" ] || { echo "server did not start: $*" >&2; exit 1; }
}

stop_last() {
    kill "${pids[-1]}" 2>/dev/null || true
    unset 'pids[-1]'
}

project() {
    mkdir -p "$work/$1"
    cat > "$work/$1/Boxfile" <<'EOF'
[project]
name = "hostile"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
depends_on = ["db"]

[[machine]]
name = "db"
EOF
}

export BOX_HOME=$work/home NO_COLOR=1
export CLOUDSTACK_API_KEY=bench-key CLOUDSTACK_SECRET_KEY=bench-secret
export BOX_CLOUDSTACK_TIMEOUT=10 BOX_CLOUDSTACK_JOB_TIMEOUT=10

echo "| endpoint | command | exit | wall | peak RSS | <= ${target_mb} MB | what box said |"
echo "|---|---|---|---|---|---|---|"

# run LABEL DIR COMMAND...: one row of the table.
run() {
    local label=$1 dir=$2
    shift 2
    local t=$work/time.txt e=$work/stderr.txt
    (cd "$dir" && CLOUDSTACK_API_URL=$url timeout -s KILL "$kill_after" \
        /usr/bin/time -v -o "$t" sh -c 'ulimit -v 4000000 && exec "$@"' sh "$box" "$@" \
        > "$work/stdout.txt" 2> "$e") || true
    local code wall rss verdict said
    if [ -s "$t" ]; then
        code=$(awk -F': ' '/Exit status/ {print $2}' "$t")
        grep -q 'Command terminated by signal' "$t" && code="signal $(awk '/terminated by signal/ {print $NF}' "$t")"
        wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$t")
        rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f MB", $2/1024}' "$t")
        verdict=$(awk -F': ' -v max="$target_mb" '/Maximum resident set size/ {print ($2/1024 <= max) ? "yes" : "NO"}' "$t")
    else
        code="killed after ${kill_after}s"; wall="-"; rss="-"; verdict="-"
    fi
    # The most specific line: the last error or cause.
    said=$(grep -E '^(error:|  caused by:)' "$e" | tail -1 | sed 's/^ *//' | cut -c1-160 || true)
    [ -n "$said" ] || said="(no error; $(wc -c < "$work/stdout.txt") bytes on stdout)"
    echo "| $label | box $* | $code | $wall | $rss | $verdict | ${said//|/\\|} |"
}

for mode in endless huge-length slow-headers drip invalid-json http-500; do
    start python3 "$hostile" "$mode"
    run "$mode" "$work" api listZones
    project "up-$mode"
    run "$mode" "$work/up-$mode" up --no-connect
    stop_last
done

# A job that never finishes: the simulator behind a proxy that answers
# queryAsyncJobResult with "pending" forever.
CLOUDSTACK_SIM_SECRET_KEY=bench-secret start "$sim" --listen 127.0.0.1:0 --api-key bench-key --job-duration 50ms
sim_url=$url
start python3 "$hostile" job-never-finishes --upstream "$sim_url"
project up-job
run "job-never-finishes" "$work/up-job" up --no-connect
vm=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"] or "")' "$work/up-job/.box/machines/db.json" 2>/dev/null || true)
run "job-never-finishes" "$work" api stopVirtualMachine "id=${vm:-none}"
# What the timed-out runs left is recorded; destroy against the real cloud removes it.
(cd "$work/up-job" && CLOUDSTACK_API_URL=$sim_url "$box" -q destroy --force) || echo "destroy failed" >&2
left=$(CLOUDSTACK_API_URL=$sim_url "$box" api listVirtualMachines listall=true |
    python3 -c 'import json,sys; print(len([v for v in json.load(sys.stdin).get("virtualmachine", []) if v["state"] not in ("Destroyed", "Expunging")]))')
stop_last

# Not hostile: a valid list of about 200 MB (3.1 KB per VM), limit raised.
start python3 "$hostile" big-json --size-mb 200
BOX_CLOUDSTACK_MAX_RESPONSE_MB=256 run "valid 200 MB list, limit 256 MB" "$work" api listVirtualMachines
stop_last

echo
echo "VMs left on the simulator after \`box destroy\` of the job-never-finishes project: $left"
