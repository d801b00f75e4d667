#!/usr/bin/env python3
"""Both functions' code under a Lambda size's CPU and memory, simulated with cgroup v1 (issue 29,
part 5): base a (`deployer invoke etl --local`) and base b (`deployer invoke site-events
--local`) each run in a cgroup whose CPU quota and memory limit match a Lambda memory size.

    sudo is not needed as root; the machine has cgroup v1 mounts and no systemd:
    python3 bench/lambda_limits.py --deployer "$CARGO_TARGET_DIR/release/deployer" \\
        --students-a 1000000 --students-b 100000 --data /tmp/pdcase-bench

What Lambda gives a function, and how it is simulated here:
- CPU: "At 1,769 MB, a function has the equivalent of one vCPU (one vCPU-second of credits per
  second)" (Lambda developer guide, "Configure Lambda function memory"), proportionally to the
  memory; a function of up to 3,008 MB sees 2 cores, throttled to its credits (measured by
  rwnx/lambda-cpuinfo). Here: the cgroup's CFS quota is memory / 1,769 of one core per
  100 ms period, on both of this machine's cores (cpu.cfs_quota_us, cpu.cfs_period_us).
- Memory: the function's memory size is its limit (memory.limit_in_bytes; the run fails if the
  kernel kills it, which the report says: memory.oom_control's oom_kill count).
- Not simulated: Lambda's network to S3 (the runs read and write a local folder from the page
  cache), its /tmp (512 MB by default; the functions stream and write no temporary file), its
  15-minute timeout (the ceiling below is the measured throughput times 900 s).

The ceiling per run is the input a function of that size would get through in 15 minutes at the
measured rate (input bytes per second), and the students that corresponds to at the generated
data's size per student.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CGROUP = Path("/sys/fs/cgroup")
MB_PER_VCPU = 1769
PERIOD_US = 100_000
LAMBDA_TIMEOUT_S = 900


def cgroup(name: str, memory_mb: int) -> dict:
    """A memory and a cpu cgroup for a function of `memory_mb`; their paths."""
    paths = {}
    for controller in ("memory", "cpu"):
        p = CGROUP / controller / name
        p.mkdir(exist_ok=True)
        paths[controller] = p
    (paths["memory"] / "memory.limit_in_bytes").write_text(str(memory_mb * 2**20))
    # Reset the peak of an earlier run.
    (paths["memory"] / "memory.max_usage_in_bytes").write_text("0")
    (paths["cpu"] / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (paths["cpu"] / "cpu.cfs_quota_us").write_text(str(PERIOD_US * memory_mb // MB_PER_VCPU))
    return paths


def oom_kills(paths: dict) -> int:
    for line in (paths["memory"] / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def run_limited(paths: dict, cmd: list) -> tuple:
    """Runs `cmd` inside the cgroups: (wall s, peak RSS MiB, cgroup peak MiB, killed). The
    cgroup's peak counts the page cache of the files the run read and wrote (reclaimable, and
    reclaimed at the limit); the RSS is the process's own (ru_maxrss)."""
    import tempfile
    procs = [str(paths[c] / "cgroup.procs") for c in ("memory", "cpu")]
    # The shell joins both groups, then becomes the command: nothing runs outside them.
    wrapper = ["sh", "-c", 'for f in "$0" "$1"; do echo $$ > "$f"; done; shift; exec "$@"', *procs, *cmd]
    kills = oom_kills(paths)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(wrapper, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        text = err.read().decode(errors="replace")
    group_peak = int((paths["memory"] / "memory.max_usage_in_bytes").read_text()) / 2**20
    killed = oom_kills(paths) > kills
    if os.waitstatus_to_exitcode(status) != 0 and not killed:
        sys.exit(f"{cmd[:3]} failed:\n{text[-3000:]}")
    return wall, usage.ru_maxrss / 1024, group_peak, killed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployer", type=Path, required=True, help="the release deployer")
    ap.add_argument("--students-a", type=int, default=1_000_000)
    ap.add_argument("--students-b", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/pdcase-bench"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[1769, 3538], help="Lambda memory sizes, MB")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from etl_duckdb import dataset, warm
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from spark_site_events import prepare

    src_a = dataset(args.data, args.students_a)
    bytes_a = sum(f.stat().st_size for f in (src_a / "a").iterdir())
    data_b = args.data / f"b-{args.students_b}"
    prepare(data_b, args.students_b)
    events = sorted((data_b / "b").glob("part-*.json"))
    bytes_b = sum(p.stat().st_size for p in events)
    warehouse_b = data_b / "wh-limits"
    students = warehouse_b / "a" / "students"
    if not (students / "_symlink_format_manifest").exists():
        # The students table as base b reads it: published by the ETL, through its manifest.
        subprocess.run([str(args.deployer), "invoke", "etl", "--local", "--source", str(data_b),
                        "--warehouse", str(warehouse_b)], check=True, stdout=subprocess.DEVNULL)
    warm([*(src_a / "a").iterdir(), *events, *students.rglob("*.parquet")])

    rows = []
    for size in args.sizes:
        paths = cgroup(f"pdcase-lambda-{size}", size)
        for base, n, nbytes in (("a", args.students_a, bytes_a), ("b", args.students_b, bytes_b)):
            walls, peaks, group_peaks, killed = [], [], [], False
            for i in range(args.repeat):
                if base == "a":
                    out = Path(f"/tmp/pdcase-limits-a-{size}")
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = [str(args.deployer), "invoke", "etl", "--local", "--source", str(src_a),
                           "--warehouse", str(out)]
                else:
                    shutil.rmtree(warehouse_b / "b", ignore_errors=True)
                    cmd = [str(args.deployer), "invoke", "site-events", "--local", "--source", str(data_b),
                           "--warehouse", str(warehouse_b), "--run-id", f"limits{size}-{i}"]
                wall, peak, group_peak, k = run_limited(paths, cmd)
                killed |= k
                walls.append(wall)
                peaks.append(peak)
                group_peaks.append(group_peak)
            wall = statistics.median(walls)
            rate = nbytes / wall
            per_student = nbytes / n
            row = dict(size_mb=size, vcpu=round(size / MB_PER_VCPU, 2), base=base, students=n,
                       input_mb=round(nbytes / 1e6), wall_s=round(wall, 2), peak_mib=round(max(peaks)),
                       cgroup_peak_mib=round(max(group_peaks)),
                       mb_per_s=round(rate / 1e6, 1), oom_killed=killed,
                       ceiling_gb=round(rate * LAMBDA_TIMEOUT_S / 1e9, 1),
                       ceiling_students_m=round(rate * LAMBDA_TIMEOUT_S / per_student / 1e6, 1))
            rows.append(row)
            print(json.dumps(row), flush=True)
        for p in paths.values():
            p.rmdir()
    print()
    print("| Lambda size | vCPU | base | students | input MB | wall s | peak RSS MiB | cgroup peak MiB (with page cache) | MB/s | ceiling per 15 min |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        oom = " (OOM-killed)" if r["oom_killed"] else ""
        print(f"| {r['size_mb']} MB | {r['vcpu']} | {r['base']} | {r['students']:,} | {r['input_mb']} | {r['wall_s']}{oom} | "
              f"{r['peak_mib']} | {r['cgroup_peak_mib']} | {r['mb_per_s']} | {r['ceiling_gb']} GB, {r['ceiling_students_m']}M students |")


if __name__ == "__main__":
    main()
