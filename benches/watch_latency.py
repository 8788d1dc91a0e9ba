"""Latency of `box sync --watch`: from a file write on the host to the file
being present, with its content, in the guest folder. Prints p50 and p95.
    watch_latency.py HOST_TREE GUEST_TREE RUNS
"""
import os
import sys
import time

host, guest, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
samples = []
for i in range(runs):
    rel = os.path.join("d07", f"latency-{i}.txt")
    body = f"change {i} {time.time()}\n"
    start = time.perf_counter()
    with open(os.path.join(host, rel), "w") as f:
        f.write(body)
    target = os.path.join(guest, rel)
    deadline = start + 30
    while True:
        try:
            with open(target) as f:
                if f.read() == body:
                    break
        except OSError:
            pass
        if time.perf_counter() > deadline:
            sys.exit(f"change {i} never arrived")
        time.sleep(0.001)
    samples.append((time.perf_counter() - start) * 1000)
    time.sleep(0.3)  # let the watcher go idle, as between a developer's saves
samples.sort()
p50 = samples[len(samples) // 2]
p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
print(f"runs {runs}  min {samples[0]:.1f} ms  max {samples[-1]:.1f} ms")
print(f"watch latency  p50 {p50:.1f} ms  p95 {p95:.1f} ms (goal p50 < 300 ms)")
