#!/usr/bin/env bash
# `box validate` on crafted Boxfiles (issue 10, item 7): time and peak
# memory of each, run under a 4 GB address-space limit. Asserts nothing.
#   benches/boxfile_validate.sh [BOX]     (default: a release build of this tree)
# Needs: python3, GNU time (/usr/bin/time).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -ge 1 ]; then
    box=$1
else
    cargo build --release --quiet --manifest-path "$repo/Cargo.toml" --bin box
    box=$repo/target/release/box
fi

work=$(mktemp -d /tmp/box-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import os, sys
work = sys.argv[1]
def boxfile(name, text):
    os.makedirs(os.path.join(work, name))
    with open(os.path.join(work, name, "Boxfile"), "w") as f:
        f.write(text)
n = 50_000
boxfile("chain-50000", "".join(
    f'[[machine]]\nname = "m{i}"\n' + (f'depends_on = ["m{i+1}"]\n' if i + 1 < n else "")
    for i in range(n)))
boxfile("unknown-keys-100000", '[[machine]]\nname = "a"\n' + "".join(f"k{i} = 1\n" for i in range(100_000)))
boxfile("duplicate-names-20000", '[[machine]]\nname = "web"\n' * 20_000)
a, b = "a" * 50_000, "b" * 50_000
boxfile("long-names-200KB",
    f'[[machine]]\nname = "{a}"\ndepends_on = ["{b}"]\n[[machine]]\nname = "{b}c"\ndepends_on = ["{a}d"]\n')
cidrs = ", ".join(f'"10.0.{i // 250}.{i % 250}/32"' for i in range(20_000))
boxfile("cloudstack-copied-5000", f"[cloudstack]\nallow_from = [{cidrs}]\n"
    + "".join(f'[[machine]]\nname = "m{i}"\n' for i in range(5000)))
PY

printf '%-32s %8s %10s %5s\n' case seconds "peak KB" exit
for dir in "$work"/*/; do
    name=$(basename "$dir")
    for flag in "" --json; do
        out=$(sh -c 'ulimit -v 4000000; /usr/bin/time -f "%e %M" "$@" >/dev/null 2>"$0.err"; echo $?' \
            "$work/$name" "$box" -C "$dir" validate $flag || true)
        read -r secs kb < <(tail -1 "$work/$name.err")
        printf '%-32s %8s %10s %5s\n' "$name${flag:+ $flag}" "$secs" "$kb" "$out"
    done
done
