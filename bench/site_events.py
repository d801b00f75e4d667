#!/usr/bin/env python3
"""Base b: the function engine (Rust, `deployer invoke site-events --local`) against the Spark
job (PySpark local[2], a fresh JVM per run), on the same generated events, one after the other
in the same run, alternating, `--repeat` times each; medians and peak RSS.

    CARGO_PROFILE_RELEASE_STRIP=false cargo build --release -p deployer
    "$(scripts/setup-python)/bin/python" bench/site_events.py --students 100000 --data /tmp/bench-b \\
        --deployer "$CARGO_TARGET_DIR/release/deployer"

Both read the same students table (Parquet, as the ETL publishes it) and write the eight tables
with their manifests and markers to a local folder; wall time is measured around each whole
process (the JVM's start included, as EMR's step pays it, and the Rust process's). Peak RSS is
the largest resident memory of the child's whole process tree, sampled every 0.1 s (for the
Spark job: the Python driver and its JVM together).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def tree_rss_kib(root: int) -> int:
    """The resident memory of `root` and all its descendants now (KiB), from /proc."""
    parent, rss = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        parent[int(d)] = int(fields.get("PPid", "0").strip())
        rss[int(d)] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(c for c, pp in parent.items() if pp == pid)
    return total


def measure(cmd, env=None):
    """Runs cmd; (wall seconds, peak RSS MiB, stdout). Peak RSS is the largest sum over its
    process tree, sampled every 0.1 s (the Spark job's JVM is a grandchild, which the child's
    `ru_maxrss` does not see)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss_kib(p.pid))
            done.wait(0.1)
    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if p.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{err.decode()[-4000:]}")
    return wall, peak[0] / 1024, out.decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", type=int, default=100_000)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--deployer", type=Path, required=True, help="the release deployer")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-spark", action="store_true", help="the function engine alone")
    args = ap.parse_args()
    # The events and the students table, as bench/spark_site_events.py prepares them.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    sys.path.insert(0, str(HERE))
    from etl_duckdb import warm
    from spark_site_events import prepare

    prepare(args.data, args.students)
    events = args.data / "b"
    size = sum(p.stat().st_size for p in events.glob("part-*.json"))
    warehouse = args.data / "wh-function"
    students = warehouse / "a" / "students"
    if not (students / "_symlink_format_manifest").exists():
        # The students table as base b reads it: published by the ETL, through its manifest
        # (a copied Parquet folder has none since issue 26).
        subprocess.run([str(args.deployer), "invoke", "etl", "--local", "--source", str(args.data),
                        "--warehouse", str(warehouse)], check=True, stdout=subprocess.DEVNULL)
    print(f"{args.students} students, {size / 1e6:.0f} MB of NDJSON in {len(list(events.glob('part-*.json')))} files",
          flush=True)
    # Read the inputs once first: otherwise the first run alone reads them from disk (in one
    # run, 8.6 s against 5.0 and 5.5 s for the next two).
    warm([*events.glob("part-*.json"), *students.rglob("*.parquet")])
    rust, spark = [], []
    for i in range(args.repeat):
        shutil.rmtree(warehouse / "b", ignore_errors=True)
        wall, rss, out = measure([str(args.deployer), "invoke", "site-events", "--local", "--source", str(args.data),
                                  "--warehouse", str(warehouse), "--run-id", f"bench{i}"])
        report = json.loads(out)
        rust.append((wall, rss))
        print(f"function engine  {wall:6.2f} s  peak RSS {rss:6.0f} MiB  ({report['lines']} lines, "
              f"{report['files_written']} files)", flush=True)
        if args.skip_spark:
            continue
        shutil.rmtree(args.data / "out-job", ignore_errors=True)
        wall, rss, _ = measure([sys.executable, str(HERE / "spark_site_events.py"), "--students", str(args.students),
                                "--data", str(args.data), "--run", "job"], env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"})
        spark.append((wall, rss))
        print(f"Spark job        {wall:6.2f} s  peak RSS {rss:6.0f} MiB", flush=True)
    r = statistics.median(w for w, _ in rust)
    print(f"function engine: median {r:.2f} s, peak RSS at most {max(m for _, m in rust):.0f} MiB")
    if spark:
        s = statistics.median(w for w, _ in spark)
        print(f"Spark job: median {s:.2f} s, peak RSS at most {max(m for _, m in spark):.0f} MiB")
        print(f"Spark / function engine: {s / r:.1f}x")
        pairs = sorted(sw / rw for (rw, _), (sw, _) in zip(rust, spark))
        print(f"per pair: {', '.join(f'{x:.1f}x' for x in pairs)}; median {statistics.median(pairs):.1f}x")


if __name__ == "__main__":
    main()
