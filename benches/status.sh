#!/usr/bin/env bash
# `box status` on a 10-machine project with state present, side by side
# with `vagrant status` on a 10-machine Vagrantfile (the issue's anchor:
# Vagrant 2.3.4 takes about 1 s). No network is used by either.
#   benches/status.sh            (needs hyperfine; vagrant if installed)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
box=${CARGO_TARGET_DIR:-$repo/target}/release/box

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/box" "$work/vagrant"

# A 10-machine Boxfile and a state file per machine, as `box up` leaves them.
{
    echo '[project]'
    echo 'name = "bench"'
    for i in $(seq 0 9); do
        printf '\n[[machine]]\nname = "m%d"\n' "$i"
    done
} > "$work/box/Boxfile"
mkdir -p "$work/box/.box/machines"
for i in $(seq 0 9); do
    cat > "$work/box/.box/machines/m$i.json" <<JSON
{"schema":1,"name":"m$i","provider":"local","id":"m$i","status":"running",
 "ssh":{"host":"127.0.0.1","port":$((2200 + i)),"user":"box","identity_file":"/x/id","host_key":"ssh-ed25519 AAAA"},
 "ports":[],"provisioned":[],"resources":[],"provider_data":{}}
JSON
done

cmds=(-n box "$box -C $work/box status")
if command -v vagrant >/dev/null; then
    {
        echo 'Vagrant.configure("2") do |config|'
        for i in $(seq 0 9); do
            echo "  config.vm.define \"m$i\" do |m|"
            echo "    m.vm.box = \"debian/bookworm64\""
            echo "  end"
        done
        echo 'end'
    } > "$work/vagrant/Vagrantfile"
    # Debian's vagrant comes with vagrant-libvirt: status loads the
    # environment and lists the 10 machines as not created, with no VM.
    cmds+=(-n vagrant "sh -c 'cd $work/vagrant && VAGRANT_CHECKPOINT_DISABLE=1 vagrant status >/dev/null 2>&1; true'")
fi
# -N: no intermediate shell, so box is timed alone.
hyperfine -N --warmup 3 --min-runs 20 --export-markdown "$work/result.md" "${cmds[@]}"
cat "$work/result.md"
