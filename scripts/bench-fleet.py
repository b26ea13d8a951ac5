#!/usr/bin/env python3
"""Throughput and latency of the distributed pipeline on one machine.

Starts a Tansu broker (scripts/install-tansu.sh), then `farol ingest`,
N x `farol process` and `farol index` (embedded index) as separate
processes, the way the compose stack runs them, and measures:

1. throughput: LINES log lines (in FILES files of one source, written before
   anything starts) from the start of `farol ingest` until `/trends` on
   `farol index` totals exactly LINES;
2. latency: one line appended to a probe file at a time, SAMPLES times, from
   the append until `/trends` counts it (polled every 2 ms), with a
   background writer appending RATE lines/s to other files meanwhile.

The truth is this script's own count of what it wrote. Prints one JSON
object; BENCHMARKS.md quotes it. Usage:

    scripts/bench-fleet.py [--farol target/release/farol] [--lines 1000000]
        [--files 6] [--processors 3] [--samples 200] [--rate 20000]
"""

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

LEVELS = ["INFO", "WARN", "ERROR", "INFO", "DEBUG", "INFO", "WARN"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def log_line(i, salt, t0_ms):
    ms = t0_ms + i
    level = LEVELS[(i + salt) % len(LEVELS)]
    return "2024-05-01 %02d:%02d:%02d,%03d %s [worker-%d] request %d done\n" % (
        12 + ms // 3_600_000 % 12,
        ms // 60_000 % 60,
        ms // 1000 % 60,
        ms % 1000,
        level,
        i % 4,
        i,
    )


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def total(base, source):
    v = get_json(
        base
        + "/trends?kind=log_class&from=1970-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=100&source="
        + source
    )
    return sum(i["count"] for i in v["items"])


def start(cmd, env, log):
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True
    )


def listening(p):
    for line in p.stdout:
        if line.startswith("listening on "):
            return line.split()[-1]
    raise SystemExit("a farol process ended before listening: " + " ".join(p.args))


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--farol", default="target/release/farol")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--processors", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--rate", type=int, default=20_000)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tansu = os.environ.get("FAROL_TANSU_BIN") or subprocess.check_output(
        [os.path.join(root, "scripts/install-tansu.sh")], text=True
    ).strip()
    work = tempfile.mkdtemp(prefix="farol-bench-fleet-")
    logs = os.path.join(work, "logs")
    os.makedirs(logs)
    per_file = a.lines // a.files
    written = 0
    nbytes = 0
    for f in range(a.files):
        with open(os.path.join(logs, "app-%d.log" % f), "w") as out:
            for i in range(per_file):
                line = log_line(i, f, 0)
                out.write(line)
                nbytes += len(line)
        written += per_file
    probe = os.path.join(work, "probe.log")
    open(probe, "w").close()
    bg = os.path.join(work, "bg.log")
    open(bg, "w").close()
    cfg = os.path.join(work, "farol.toml")
    with open(cfg, "w") as c:
        c.write(
            '[kafka]\nbrokers = "from-env"\n'
            '[[logs]]\nname = "app"\npaths = ["%s/*.log"]\n'
            '[[logs]]\nname = "probe"\npaths = ["%s"]\n'
            '[[logs]]\nname = "bg"\npaths = ["%s"]\n' % (logs, probe, bg)
        )
    port = free_port()
    broker = subprocess.Popen(
        [
            tansu,
            "broker",
            "--listener-url",
            "tcp://127.0.0.1:%d" % port,
            "--advertised-listener-url",
            "tcp://127.0.0.1:%d" % port,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = dict(os.environ)
    env.update(
        {
            "FAROL_KAFKA__BROKERS": "127.0.0.1:%d" % port,
            "FAROL_KAFKA__PARTITIONS": "6",
            "FAROL_KAFKA__SESSION_TIMEOUT": "6s",
            "FAROL_KAFKA__HEARTBEAT_INTERVAL": "1s",
            "FAROL_LOG": "warn",
        }
    )
    procs = []
    try:
        time.sleep(0.5)
        members = []
        for i in range(a.processors):
            p = start(
                [a.farol, "process", "--config", cfg, "--data-dir", os.path.join(work, "p%d" % i), "--listen", "127.0.0.1:0"],
                env,
                os.path.join(work, "process-%d.log" % i),
            )
            procs.append(p)
            members.append(p)
            listening(p)
        index = start(
            [a.farol, "index", "--config", cfg, "--data-dir", os.path.join(work, "index"), "--listen", "127.0.0.1:0"],
            env,
            os.path.join(work, "index.log"),
        )
        procs.append(index)
        base = listening(index)
        started = time.monotonic()
        ingest = subprocess.Popen(
            [a.farol, "ingest", "--config", cfg, "--data-dir", os.path.join(work, "ingest")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "ingest.log"), "w"),
        )
        procs.append(ingest)
        while total(base, "app") != written:
            if time.monotonic() - started > 1800:
                raise SystemExit("not exact after 30 minutes")
            time.sleep(0.05)
        wall = time.monotonic() - started

        # Latency with a background writer.
        stop = threading.Event()
        bg_written = [0]

        def writer():
            i = 0
            with open(bg, "a") as out:
                while not stop.is_set():
                    t = time.monotonic()
                    n = max(1, a.rate // 100)
                    out.write("".join(log_line(i + k, 0, 0) for k in range(n)))
                    out.flush()
                    i += n
                    bg_written[0] = i
                    time.sleep(max(0.0, 0.01 - (time.monotonic() - t)))

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        lat = []
        seen = total(base, "probe")
        for i in range(a.samples):
            time.sleep(random.uniform(0.05, 0.15))
            with open(probe, "a") as out:
                t0 = time.monotonic()
                out.write(log_line(i, 0, 0))
            seen += 1
            while total(base, "probe") < seen:
                if time.monotonic() - t0 > 60:
                    raise SystemExit("a probe line was not counted within 60 s")
                time.sleep(0.002)
            lat.append((time.monotonic() - t0) * 1000)
        stop.set()
        w.join()
        lat.sort()

        def pct(p):
            return round(lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 1)

        print(
            json.dumps(
                {
                    "lines": written,
                    "bytes": nbytes,
                    "processors": a.processors,
                    "wall_s": round(wall, 2),
                    "lines_per_s": round(written / wall),
                    "mb_per_s": round(nbytes / wall / 1e6, 2),
                    "latency_ms": {
                        "samples": len(lat),
                        "background_lines_per_s": a.rate,
                        "p50": pct(50),
                        "p90": pct(90),
                        "p99": pct(99),
                        "max": round(lat[-1], 1),
                    },
                    "peak_rss_mib": {
                        "index": (rss_kib(index.pid) or 0) // 1024,
                        "process": [(rss_kib(p.pid) or 0) // 1024 for p in members],
                        "ingest": (rss_kib(ingest.pid) or 0) // 1024,
                    },
                    "load_average": os.getloadavg(),
                }
            )
        )
    finally:
        for p in procs:
            p.kill()
        broker.kill()


if __name__ == "__main__":
    sys.exit(main())
