#!/usr/bin/env python3
"""Runs a command under `/usr/bin/time -v` and prints
`WALL_S<TAB>MAX_RSS_MIB<TAB>TREE_RSS_MIB`: the wall time, the largest
single process's peak RSS (from time -v), and the peak of the summed RSS of
the whole process tree, sampled every 200 ms from /proc.

    measure.py TIME_LOG -- COMMAND...

Exits with the command's status (after printing).
"""

import os
import subprocess
import sys
import threading
import time


def tree_rss_kib(root):
    children = {}
    rss = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[int(pid)] = int(line.split()[1])
                        break
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    log = sys.argv[1]
    start = time.monotonic()
    proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", log, *sys.argv[3:]])
    # The tree is sampled on a thread; the wall time is taken when the
    # command exits (a polling loop would round it up to its period).
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.wait()
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    peak = peak[0]
    max_rss = 0
    with open(log) as f:
        for line in f:
            if "Maximum resident set size" in line:
                max_rss = int(line.rsplit(":", 1)[1])
    print(f"{wall:.3f}\t{max_rss / 1024:.1f}\t{peak / 1024:.1f}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
