#!/usr/bin/env bash
# A live folder (`type = "mount"`, virtio-fs) against the copied folder (sync
# over SSH), side by side on ONE local TCG guest that has both (issue 15 §1):
#   - `git status` and a "build step" reading every file
#     (`find | xargs cat | sha256sum`), in the guest, on each folder;
#   - what a host edit costs before the guest sees it: `box sync` for the
#     copy, nothing for the mount;
#   - edit-visibility latency of the mount, host -> guest and guest -> host.
# Prints times and ratios; asserts nothing.
#   benches/mount_vs_sync.sh [FILES]        (default 5000 small files)
# Needs: qemu-system-x86_64, /usr/lib/qemu/virtiofsd, git, python3, ssh, and the
# debian-12 box in BOX_BOXES_DIR (default: the tests' cache).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
files=${1:-5000}
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
box=$repo/target/release/box

work=$(mktemp -d /tmp/box-mount-bench.XXXXXX)
export BOX_HOME=$work/home
export BOX_BOXES_DIR=${BOX_BOXES_DIR:-/var/cache/box-tests/boxes}
export BOX_QEMU_ACCEL=${BOX_QEMU_ACCEL:-tcg} BOX_ISOLATED=1 NO_COLOR=1
proj=$work/proj
cleanup() {
    (cd "$proj" && "$box" destroy --force >/dev/null 2>&1) || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$proj/tree" "$BOX_HOME"

# --- a tree of many small files, a git repository --------------------------
python3 - "$proj/tree" "$files" <<'PY'
import os, sys, random
root, n = sys.argv[1], int(sys.argv[2])
random.seed(15)
for i in range(n):
    d = os.path.join(root, "src", f"mod{i % 50:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.rs"), "w") as f:
        f.write(f"// file {i}\n" + "fn f() {}\n" * random.randint(5, 60))
PY
git -C "$proj/tree" init -q
git -C "$proj/tree" -c user.email=b@b -c user.name=bench add -A
git -C "$proj/tree" -c user.email=b@b -c user.name=bench commit -q -m tree
bytes=$(du -sb "$proj/tree" | cut -f1)

cat > "$proj/Boxfile" <<TOML
[project]
name = "mountbench"

[defaults]
box = "debian-12"
cpus = 2
memory = 1024
user = "box"

[local]
isolated = true

[[machine]]
name = "m"
sync = [
  { from = "tree", to = "/srv/mount", type = "mount" },
  { from = "tree", to = "/srv/copy" },
]
TOML
cd "$proj"
echo "== box up (first copy of $files files, $((bytes / 1024)) KiB, and the mount)"
start=$(date +%s.%N)
"$box" up >/dev/null
echo "   up: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"

"$box" ssh-config > "$work/ssh_config"
alias=$(awk '/^Host /{print $2; exit}' "$work/ssh_config")
gssh() { ssh -F "$work/ssh_config" "$alias" "$@"; }
# The box has no git: the host's (same Debian release, same libraries).
gssh 'cat > /tmp/git && chmod +x /tmp/git' < "$(command -v git)"
gssh '/tmp/git config --global --add safe.directory "*"'

# Milliseconds of one command in the guest, timed there (no SSH in it).
guest_ms() {
    gssh "cd $1 && s=\$(date +%s%N) && { $2 ; } >/dev/null 2>&1 && e=\$(date +%s%N) && echo \$(( (e - s) / 1000000 ))"
}
median() { python3 -c 'import sys,statistics; print(int(statistics.median(map(int, sys.argv[1:]))))' "$@"; }
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else 'n/a')" "$1" "$2"; }

build='find . -path ./.git -prune -o -type f -print0 | xargs -0 cat | sha256sum'
status='/tmp/git status --porcelain'
declare -A result
for what in status build; do
    cmd=${!what}
    for folder in mount copy; do
        # Cold: first run after dropping the guest's page and dentry caches.
        gssh 'sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null'
        cold=$(guest_ms /srv/$folder "$cmd")
        warm=$(median $(for _ in 1 2 3; do guest_ms /srv/$folder "$cmd"; done))
        result[$what-$folder-cold]=$cold
        result[$what-$folder-warm]=$warm
    done
done
# Both folders hold the same bytes (in name order: readdir orders differ).
same='find . -path ./.git -prune -o -type f -print0 | sort -z | xargs -0 cat | sha256sum'
m=$(gssh "cd /srv/mount && $same")
c=$(gssh "cd /srv/copy && $same")
[ "$m" = "$c" ] || echo "   WARNING: the folders differ ($m vs $c)"

echo
printf '%-34s %10s %10s %14s\n' "in the guest, $files files" "mount ms" "copy ms" "mount/copy"
for what in status build; do
    for t in cold warm; do
        a=${result[$what-mount-$t]} b=${result[$what-copy-$t]}
        label="git status ($t)"; [ $what = build ] && label="build: find|xargs cat|sha256 ($t)"
        printf '%-34s %10s %10s %14s\n' "$label" "$a" "$b" "$(ratio "$a" "$b")"
    done
done

# --- what a host edit costs before the guest sees it -------------------------
for i in $(seq 0 9); do echo "// edited" >> "$proj/tree/src/mod0$i/file0000$i.rs"; done
s=$(date +%s%N)
"$box" sync >/dev/null
sync_ms=$(( ($(date +%s%N) - s) / 1000000 ))
echo
echo "after editing 10 files on the host:"
echo "   copy:  box sync            ${sync_ms} ms"
echo "   mount: nothing to run      0 ms (visible within the latency below)"

# --- edit-visibility latency of the mount ------------------------------------
python3 - "$work/ssh_config" "$alias" "$proj/tree" <<'PY'
import os, subprocess, sys, time, statistics
cfg, alias, tree = sys.argv[1:]
host_file = os.path.join(tree, "latency.txt")
guest_file = "/srv/mount/latency.txt"
rounds = 10

# host -> guest: the guest polls the file with shell builtins only and
# prints when it reads the round's value; the host times write -> line.
watch = subprocess.Popen(
    ["ssh", "-F", cfg, alias,
     f"echo ready; n=0; while [ $n -lt {rounds} ]; do l=; {{ read -r l < {guest_file}; }} 2>/dev/null; "
     f"if [ \"$l\" = \"h$n\" ]; then echo seen; n=$((n+1)); fi; done"],
    stdout=subprocess.PIPE, text=True, bufsize=1)
assert watch.stdout.readline().strip() == "ready"
h2g = []
for n in range(rounds):
    time.sleep(0.3)
    t0 = time.monotonic()
    with open(host_file + ".tmp", "w") as f:
        f.write(f"h{n}\n")
    os.rename(host_file + ".tmp", host_file)
    assert watch.stdout.readline().strip() == "seen"
    h2g.append((time.monotonic() - t0) * 1000)
watch.wait()

# guest -> host: the guest writes when the host sends a line; the host polls
# the file. Includes one SSH hop of the trigger line (loopback).
writer = subprocess.Popen(
    ["ssh", "-F", cfg, alias,
     f"while read -r n; do echo \"g$n\" > {guest_file}.tmp && mv {guest_file}.tmp {guest_file}; done"],
    stdin=subprocess.PIPE, text=True, bufsize=1)
g2h = []
for n in range(rounds):
    time.sleep(0.3)
    t0 = time.monotonic()
    writer.stdin.write(f"{n}\n"); writer.stdin.flush()
    while True:
        try:
            if open(host_file).read() == f"g{n}\n":
                break
        except FileNotFoundError:
            pass
    g2h.append((time.monotonic() - t0) * 1000)
writer.stdin.close(); writer.wait()

def show(name, v):
    print(f"   {name}: median {statistics.median(v):.0f} ms, max {max(v):.0f} ms ({len(v)} edits)")
print("\nedit-visibility latency of the mount (virtiofsd cache=auto):")
show("host edit -> seen in the guest", h2g)
show("guest edit -> seen on the host", g2h)
PY
