# Sourced by the CloudStack benches: builds release `box` and
# `cloudstack-sim`, starts the simulator on a free loopback port with jobs
# that take $1 (e.g. 3s), and points box at it. Sets $repo, $box, $sim and
# $work (a temp folder removed on exit, with the simulator).
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
    --job-duration "$1" > "$work/sim.out" 2>/dev/null &
sim_pid=$!
for _ in $(seq 50); do
    grep -q listening "$work/sim.out" 2>/dev/null && break
    sleep 0.1
done
CLOUDSTACK_API_URL=$(sed 's/^listening on //' "$work/sim.out")
export CLOUDSTACK_API_URL
export CLOUDSTACK_API_KEY=bench-key CLOUDSTACK_SECRET_KEY=bench-secret BOX_HOME=$work/home
