#!/usr/bin/env bash
# `box ssh web -- true` through box's connection holder, side by side with
# OpenSSH through a live ControlMaster, on one loopback sshd with throwaway
# keys (issue 14 §5; goal: ratio <= 1.0). Also a direct connection each
# time (BOX_SSH_HOLDER_IDLE=off) and plain ssh. Reports; asserts nothing.
#   benches/ssh_reuse.sh [RUNS]      (default 100)
# Needs: openssh-server, openssh-client, python3.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-100}
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
box=$repo/target/release/box

work=$(mktemp -d /tmp/box-bench.XXXXXX)
sshd_pid=
cleanup() {
    "$box" -q -C "$work/proj" destroy --force >/dev/null 2>&1 || true
    ssh -F "$work/ssh_config.mux" -O exit bench-web 2>/dev/null || true
    [ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null || true
    [ -n "${qemu_pid:-}" ] && kill "$qemu_pid" 2>/dev/null || true
    rm -rf "$work"
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
LogLevel ERROR
MaxStartups 200
MaxSessions 200
CONF
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd_pid=$!
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done

# --- a project whose machine state points at it ----------------------------
proj=$work/proj
mkdir -p "$proj/.box/machines"
host_key=$(cut -d' ' -f1,2 "$work/host_ed25519.pub")
# box judges a local machine running by its QEMU process, whose command line
# names the machine's disk: a stand-in process does, for as long as we run.
python3 -c 'import time; time.sleep(100000)' "$proj/.box/machines/web/disk.qcow2" &
qemu_pid=$!
cat > "$proj/.box/machines/web.json" <<JSON
{"schema":1,"name":"web","provider":"local","provider_data":{"pid":$qemu_pid},"status":"running",
 "ssh":{"host":"127.0.0.1","port":$port,"user":"root","identity_file":"$work/id_ed25519","host_key":"$host_key"}}
JSON
printf '[project]\nname = "bench"\n\n[[machine]]\nname = "web"\n' > "$proj/Boxfile"

"$box" -C "$proj" ssh-config > "$work/ssh_config.mux"
# No multiplexing at all: `ControlMaster no` alone still uses a live master
# through ControlPath.
sed -e 's/ControlMaster auto/ControlMaster no/' -e 's|ControlPath .*|ControlPath none|' \
    "$work/ssh_config.mux" > "$work/ssh_config"
grep -q ControlMaster "$work/ssh_config.mux" || { echo "box ssh-config has no ControlMaster"; exit 1; }

# Both reuse mechanisms are started before measuring: the holder by a first
# `box ssh`, the ControlMaster by a first `ssh` (ControlPersist keeps it).
"$box" -C "$proj" ssh web -- true
for _ in $(seq 100); do [ -S "$proj/.box/holder/ssh.sock" ] && break; sleep 0.05; done
"$box" -vv -C "$proj" ssh web -- true 2>&1 | grep -q "via the connection holder" \
    || { echo "box ssh does not go through the holder"; exit 1; }
ssh -F "$work/ssh_config.mux" bench-web true
ssh -F "$work/ssh_config.mux" -O check bench-web

echo; echo "== box ssh web -- true (holder)  vs  ssh through a live ControlMaster =="
# Interleaved: each round runs every command once, in a shuffled order, so
# a change in the machine's load hits all of them alike (hyperfine runs one
# command's runs, then the next's). The ratio is of the medians.
python3 - "$runs" \
    "box-holder=$box -C $proj ssh web -- true" \
    "ssh-controlmaster=ssh -F $work/ssh_config.mux bench-web true" \
    "box-direct=env BOX_SSH_HOLDER_IDLE=off $box -C $proj ssh web -- true" \
    "ssh=ssh -F $work/ssh_config bench-web true" <<'PY'
import random, shlex, statistics, subprocess, sys, time
runs = int(sys.argv[1])
cmds = dict(a.split("=", 1) for a in sys.argv[2:])
times = {name: [] for name in cmds}
for name, cmd in cmds.items():  # warm-up
    for _ in range(3):
        subprocess.run(shlex.split(cmd), stdin=subprocess.DEVNULL, check=True)
for _ in range(runs):
    order = list(cmds)
    random.shuffle(order)
    for name in order:
        t = time.perf_counter()
        subprocess.run(shlex.split(cmds[name]), stdin=subprocess.DEVNULL, check=True)
        times[name].append(time.perf_counter() - t)
def line(name):
    t = times[name]
    return (f"{name:18} median {statistics.median(t)*1000:7.1f} ms  mean {statistics.mean(t)*1000:7.1f} ms"
            f"  min {min(t)*1000:6.1f} ms  ({len(t)} runs)")
for name in cmds:
    print(line(name))
h, m = times["box-holder"], times["ssh-controlmaster"]
print()
print(f"ratio box-holder / ssh-controlmaster: median {statistics.median(h)/statistics.median(m):.2f}, "
      f"mean {statistics.mean(h)/statistics.mean(m):.2f}, min {min(h)/min(m):.2f}  (goal <= 1.0)")
print(f"ratio box-direct / ssh:               median {statistics.median(times['box-direct'])/statistics.median(times['ssh']):.2f}")
PY
