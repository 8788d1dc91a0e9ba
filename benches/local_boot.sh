#!/usr/bin/env bash
# Benchmark of the local QEMU provider.
#
# 1. Time from `box up` to SSH-ready (box up returns once it has logged in)
#    against the anchor: a bare `qemu-system-x86_64` boot of the same box
#    image, with the same cloud-init seed, to sshd sending its banner on the
#    forwarded port. Runs alternate (box, bare, box, bare...) so host load
#    hits both alike; the report gives each median and the ratio box/bare.
# 2. Disk used per extra machine: the allocated size of each machine's
#    overlay after its first boot, against the size of the box image.
#
# Usage: benches/local_boot.sh [RUNS]   (default 3; each run is two boots)
# Needs: a built `box` (cargo build), qemu-system-x86_64, qemu-img, and the
# debian-12 box (tests build it into /var/cache/box-tests/boxes).
# Always TCG and isolated: timings are TCG timings.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
BOX=${BOX:-$PWD/target/debug/box}
export BOX_BOXES_DIR=${BOX_BOXES_DIR:-/var/cache/box-tests/boxes}
export BOX_QEMU_ACCEL=tcg BOX_ISOLATED=1 NO_COLOR=1
work=$(mktemp -d /tmp/box-bench.XXXXXX)
export BOX_HOME=$work/home
bare_pid=
cleanup() {
    [ -n "$bare_pid" ] && kill "$bare_pid" 2>/dev/null || true
    for p in "$work/p" "$work/p2"; do
        (cd "$p" 2>/dev/null && "$BOX" destroy --force >/dev/null 2>&1) || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

[ -x "$BOX" ] || { echo "build box first: cargo build" >&2; exit 1; }
# The newest debian-12 in box's own version order (what `box up` boots; a
# lexical sort would put a clock-versioned 2026... after 12.0.2026...).
mkdir -p "$work/home"
"$BOX" box list --json > "$work/boxes.json"
field() {
    python3 -c "import json,sys; l=[b for b in json.load(open(sys.argv[1])) if b['name']=='debian-12']; print(l[-1].get(sys.argv[2]) or '' if l else '')" \
        "$work/boxes.json" "$1"
}
disk=$(field disk)
[ -n "$disk" ] || { echo "no debian-12 box in $BOX_BOXES_DIR: run the local tests or 'box box build boxes/debian-12'" >&2; exit 1; }
kernel=$(field kernel)
initrd=$(field initrd)
cmdline=$(field cmdline)

mkdir -p "$work/p" "$work/p2" "$work/home"
boxfile() {
    printf '[project]\nname = "bench"\n\n[defaults]\nbox = "debian-12"\ncpus = 1\nmemory = 512\n\n[local]\nisolated = true\n'
    for m in "$@"; do printf '\n[[machine]]\nname = "%s"\n' "$m"; done
}
# Timing: one machine (no private network), so bare QEMU boots the same guest.
boxfile a > "$work/p/Boxfile"
# Disk: two machines over the same box.
boxfile a b > "$work/p2/Boxfile"

now() { date +%s.%N; }
# When a process started, in epoch seconds (10 ms resolution).
qemu_started() {
    python3 - "$1" <<'PY'
import os, sys, time
fields = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split()
ticks = int(fields[19])
uptime = float(open("/proc/uptime").read().split()[0])
print(time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK")))
PY
}
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# sshd answering: the guest's banner, not just slirp accepting the connection.
wait_banner() {
    local port=$1
    for _ in $(seq 1 1800); do
        if banner=$(timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port; head -c 7 <&3" 2>/dev/null) \
            && [ "$banner" = "SSH-2.0" ]; then
            return 0
        fi
        sleep 0.2
    done
    echo "sshd never answered on $port" >&2
    return 1
}

box_times=()
box_banner=()
box_own=()
bare_times=()
overlay_kib=()
for run in $(seq 1 "$RUNS"); do
    # box: a fresh machine, from `box up` until it has logged in over SSH.
    (cd "$work/p" && "$BOX" destroy --force >/dev/null 2>&1 || true)
    t0=$(now)
    (cd "$work/p" && "$BOX" -q up a) &
    up_pid=$!
    # Where box's time goes: the guest's sshd answering, then box logged in.
    state=$work/p/.box/machines/a.json
    until [ -s "$state" ] && grep -q '"port"' "$state"; do sleep 0.1; done
    box_port=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['ssh']['port'])" "$state")
    wait_banner "$box_port"
    tb=$(now)
    tq=$(qemu_started "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['provider_data']['pid'])" "$state")")
    wait "$up_pid"
    t1=$(now)
    # box's own time, free of the guest's (load-dependent) boot: before
    # QEMU starts (box, overlay, seed, keys) plus after sshd answers (login).
    box_own+=("$(echo "($tq - $t0) + ($t1 - $tb)" | bc)")
    box_times+=("$(echo "$t1 - $t0" | bc)")
    box_banner+=("$(echo "$tb - $t0" | bc)")
    m=$work/p/.box/machines/a
    overlay_kib+=("$(du -k "$m/disk.qcow2" | cut -f1)")
    cp "$m/seed.img" "$work/seed.img"
    mac=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['provider_data']['nat_mac'])" "$work/p/.box/machines/a.json")
    (cd "$work/p" && "$BOX" -q destroy --force)

    # bare QEMU: the same image, seed, CPU and memory; an overlay made by hand.
    rm -f "$work/bare.qcow2" "$work/bare.pid"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    t0=$(now)
    qemu-img create -q -f qcow2 -F qcow2 -b "$disk" "$work/bare.qcow2"
    qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -smp 1 -m 512M \
        -nodefaults -display none -vga none \
        -drive "file=$work/bare.qcow2,if=virtio,format=qcow2" \
        -drive "file=$work/seed.img,if=virtio,format=raw,readonly=on" \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
        -netdev "user,id=n,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
        -device "virtio-net-pci,netdev=n,mac=$mac" -device virtio-rng-pci \
        -serial "file:$work/bare-console.log" -daemonize -pidfile "$work/bare.pid"
    bare_pid=$(cat "$work/bare.pid")
    wait_banner "$port"
    t1=$(now)
    bare_times+=("$(echo "$t1 - $t0" | bc)")
    kill "$bare_pid"; bare_pid=
    echo "run $run: box up ${box_times[-1]}s (sshd answered at ${box_banner[-1]}s; box's own ${box_own[-1]}s), bare qemu ${bare_times[-1]}s" >&2
done

# Two machines: the second costs only its overlay.
(cd "$work/p2" && "$BOX" -q up)
base_kib=$(du -k "$disk" | cut -f1)
a_kib=$(du -k "$work/p2/.box/machines/a/disk.qcow2" | cut -f1)
b_kib=$(du -k "$work/p2/.box/machines/b/disk.qcow2" | cut -f1)
seed_kib=$(du -k "$work/p2/.box/machines/b/seed.img" | cut -f1)
(cd "$work/p2" && "$BOX" -q destroy --force)

box_med=$(printf '%s\n' "${box_times[@]}" | median)
bare_med=$(printf '%s\n' "${bare_times[@]}" | median)
banner_med=$(printf '%s\n' "${box_banner[@]}" | median)
own_med=$(printf '%s\n' "${box_own[@]}" | median)
echo "local boot benchmark (TCG, isolated, 1 vCPU, 512 MiB, $RUNS runs each, medians)"
printf 'anchor  bare qemu-system-x86_64 boot to sshd banner: %8.1f s\n' "$bare_med"
printf 'box     box up to SSH-ready (logged in):             %8.1f s\n' "$box_med"
printf 'box     box up to sshd banner (same test as anchor): %8.1f s  (ratio %.3f)\n' \
    "$banner_med" "$(echo "$banner_med / $bare_med" | bc -l)"
printf 'box     own time (before QEMU + after sshd answers): %8.2f s  (%.1f%% of the anchor)\n' \
    "$own_med" "$(echo "$own_med / $bare_med * 100" | bc -l)"
printf 'ratio   box / bare:                                  %8.3f  (overhead %+.1f%%)\n' \
    "$(echo "$box_med / $bare_med" | bc -l)" "$(echo "($box_med / $bare_med - 1) * 100" | bc -l)"
echo "disk    box image $((base_kib / 1024)) MiB allocated; per machine after first boot:"
echo "        overlay a $((a_kib / 1024)) MiB, overlay b $((b_kib / 1024)) MiB, seed $((seed_kib)) KiB"
echo "        (single-machine runs: overlay ${overlay_kib[*]} KiB)"
