#!/usr/bin/env bash
# SSH and folder sync, side by side with the OpenSSH tools, on one loopback
# sshd with throwaway keys (issue 6 benchmarks). Reports ratios; asserts nothing.
#   benches/ssh_sync.sh [FILES] [MB] [WATCH_FILES]     (default 10000 100 30000)
# BENCH_GUEST_ROOT=/dev/shm puts the "guest" folders there instead of under
# /tmp: on an ext4 without a journal, creating files right after the previous
# run's deletes costs the kernel more than the transfer (see the results).
# Needs: hyperfine, rsync, openssh-server, openssh-client, python3.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
files=${1:-10000}
mb=${2:-100}
watch_files=${3:-30000}
# Only the watch latency: no big tree needed.
if [ "${BENCH_ONLY:-all}" = watch ]; then files=10; mb=1; fi
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
box=$repo/target/release/box

work=$(mktemp -d /tmp/box-bench.XXXXXX)
sshd_pid=
cleanup() {
    [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
    [ -n "${watch_pid:-}" ] && kill "$watch_pid" 2>/dev/null || true
    rm -rf "$work" "${guest:-}"
}
trap cleanup EXIT

# --- a loopback sshd -------------------------------------------------------
ssh-keygen -q -t ed25519 -N '' -C bench-host -f "$work/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C bench-user -f "$work/id_ed25519"
cp "$work/id_ed25519.pub" "$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p /run/sshd
cat > "$work/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $work/host_ed25519
PidFile none
UsePAM no
StrictModes no
PermitRootLogin yes
AuthorizedKeysFile $work/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel ERROR
MaxStartups 200
CONF
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done

# --- a project whose machine state points at it ----------------------------
proj=$work/proj
guest=$(mktemp -d "${BENCH_GUEST_ROOT:-$work}/box-bench-guest.XXXXXX")
mkdir -p "$proj/.box/machines" "$guest"
host_key=$(cut -d' ' -f1,2 "$work/host_ed25519.pub")
# Recorded as a CloudStack machine: a local one is checked against its QEMU
# process, and this one has none (sync never knows the provider).
cat > "$proj/.box/machines/web.json" <<JSON
{"schema":1,"name":"web","provider":"cloudstack","status":"running",
 "ssh":{"host":"127.0.0.1","port":$port,"user":"root","identity_file":"$work/id_ed25519","host_key":"$host_key"}}
JSON
cat > "$proj/Boxfile" <<TOML
[project]
name = "bench"

[[machine]]
name = "web"
sync = [{ from = "tree", to = "$guest/box" }]
TOML

echo "generating $files files, $mb MB..."
python3 - "$proj/tree" "$files" "$mb" <<'PY'
import os, sys, random
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(1)
total = mb * 1024 * 1024
# Sizes spread like a source tree: many small files, a few large ones.
weights = [random.paretovariate(1.2) for _ in range(n)]
scale = total / sum(weights)
for i in range(n):
    d = os.path.join(root, f"d{i % 50:02d}", f"s{(i // 50) % 20:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.dat"), "wb") as f:
        f.write(os.urandom(max(1, int(weights[i] * scale))))
PY
du -sh "$proj/tree"

"$box" -C "$proj" ssh-config > "$work/ssh_config.mux"
# One connection per run, like box: no multiplexing.
sed 's/ControlMaster auto/ControlMaster no/' "$work/ssh_config.mux" > "$work/ssh_config"
rsync_cmd="rsync -a --delete -e 'ssh -F $work/ssh_config' $proj/tree/ bench-web:$guest/rsync/"
manifest_dir=$proj/.box/machines/web/sync

run() { hyperfine --style basic --export-json "$work/$1.json" "${@:2}"; }
# BENCH_ONLY=watch skips the hyperfine comparisons.
only=${BENCH_ONLY:-all}

if [ "$only" = all ]; then
echo; echo "== initial sync: $files files, $mb MB =="
run initial --warmup 1 --runs 5 \
    --prepare "rm -rf $guest/box $manifest_dir $guest/rsync; sync" -n box "$box -q -C $proj sync" \
    -n rsync "$rsync_cmd"

echo; echo "== re-sync, nothing changed =="
"$box" -q -C "$proj" sync; eval "$rsync_cmd"
run resync --warmup 2 --runs 15 -n box "$box -q -C $proj sync" -n rsync "$rsync_cmd"

echo; echo "== box ssh web -- true  vs  ssh -F ssh_config (from box ssh-config) =="
run ssh --warmup 3 --runs 40 -n box "$box -C $proj ssh web -- true" \
    -n ssh "ssh -F $work/ssh_config bench-web true" \
    -n ssh-multiplexed "ssh -F $work/ssh_config.mux bench-web true"
ssh -F "$work/ssh_config.mux" -O exit bench-web 2>/dev/null || true
fi

echo; echo "== box sync --watch latency on a $watch_files-file tree =="
rm -rf "$proj/tree" "$manifest_dir" "$guest/box"
python3 - "$proj/tree" "$watch_files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i % 100:02d}", f"s{(i // 100) % 30:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
"$box" -q -C "$proj" sync
"$box" -C "$proj" sync --watch 2>"$work/watch.log" &
watch_pid=$!
for _ in $(seq 200); do grep -q watching "$work/watch.log" && break; sleep 0.05; done
python3 "$repo/benches/watch_latency.py" "$proj/tree" "$guest/box" 40 | tee "$work/watch.txt"
kill "$watch_pid"; watch_pid=

[ "$only" = all ] || exit 0
echo; echo "== ratios (box / anchor, mean) =="
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
def means(name):
    return {r["command"]: r["mean"] for r in json.load(open(f"{w}/{name}.json"))["results"]}
i = means("initial"); r = means("resync"); s = means("ssh")
print(f"initial sync   box {i['box']*1000:8.1f} ms  rsync {i['rsync']*1000:8.1f} ms  ratio {i['box']/i['rsync']:.2f} (goal <= 0.5, issue 14)")
print(f"re-sync        box {r['box']*1000:8.1f} ms  rsync {r['rsync']*1000:8.1f} ms  ratio {r['box']/r['rsync']:.2f} (goal: no slower than 0.18)")
print(f"ssh -- true    box {s['box']*1000:8.1f} ms  ssh   {s['ssh']*1000:8.1f} ms  ratio {s['box']/s['ssh']:.2f} (goal <= 1.2)")
print(f"               ssh with a live ControlMaster {s['ssh-multiplexed']*1000:.1f} ms")
PY
cat "$work/watch.txt" | tail -1
