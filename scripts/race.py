#!/usr/bin/env python3
"""Two runs of one base started together, round after round, on local folders: the lease
(crates/etl/src/lease.rs) lets one write at a time, and the warehouse stays whole.

    scripts/race.py [--rounds 20] [--engines etl,site-events,spark] [--students 2000]

For each engine (base a's ETL, base b's function engine, base b's Spark job with local
PySpark) it starts two runs at once into one warehouse folder, waits for both, then checks:

- every table's manifest names files that exist, all of one run, and its `_SUCCESS` marker
  names that run; every table of the base names the same run;
- each run either succeeded (it waited for the lease, then ran) or was refused with a clear
  message naming the run holding the lease;

and then that a third run started alone succeeds and leaves the base whole again. It prints
one line per round and a summary per engine, and exits 1 on any violation. `--kill` also
kills a run with SIGKILL while it writes, then checks that the next run proceeds (the lease of
a process that is gone is free) and leaves the base whole.

Needs the `deployer` binary (DEPLOYER_BIN, or the debug build under CARGO_TARGET_DIR) and,
for `spark`, PySpark in this Python (the test virtualenv).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PDCASE_SHARED", ROOT.parent / "shared"))
SPARK_JOB = ROOT / "crates" / "etl" / "spark" / "site_events.py"
TABLES = {
    "a": ["students", "follows", "sessions", "subscriptions"],
    "b": ["events", "events-by-city", "events-by-state", "events-by-pagename", "events-by-university",
          "events-by-course", "events-by-client-type", "sessions-by-campaign"],
}
MANIFEST = "_symlink_format_manifest/manifest"
REFUSAL = "is being built by run"


def deployer() -> str:
    if "DEPLOYER_BIN" in os.environ:
        return os.environ["DEPLOYER_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pdcase" / "target"))
    return str(target / "debug" / "deployer")


def command(engine: str, source: Path, warehouse: Path, run_id: str) -> list[str]:
    if engine == "etl":
        return [deployer(), "invoke", "etl", "--local", "--source", str(source), "--warehouse", str(warehouse)]
    if engine == "site-events":
        return [deployer(), "invoke", "site-events", "--local", "--source", str(source), "--warehouse",
                str(warehouse), "--run-id", run_id]
    return [sys.executable, str(SPARK_JOB), "--events", str(source / "b"), "--students",
            str(warehouse / "a" / "students"), "--output", str(warehouse / "b"), "--run-id", run_id]


def base_of(engine: str) -> str:
    return "a" if engine == "etl" else "b"


def whole(warehouse: Path, base: str) -> tuple[str | None, list[str]]:
    """The run every table of the base names, and what is wrong (empty: the base is whole)."""
    problems, runs = [], set()
    for table in TABLES[base]:
        folder = warehouse / base / table
        manifest = folder / MANIFEST
        if not manifest.exists():
            problems.append(f"{base}/{table}: no manifest")
            continue
        named = set()
        for line in manifest.read_text().splitlines():
            path = Path(line.removeprefix("file:"))
            if not path.exists():
                problems.append(f"{base}/{table}: the manifest names {path}, which does not exist")
            run = next((p[4:] for p in path.parts if p.startswith("run=")), None)
            named.add(run)
        marker = json.loads((folder / "_SUCCESS").read_text())
        if len(named) > 1:
            problems.append(f"{base}/{table}: the manifest names files of runs {sorted(named)}")
        if named and marker["run"] not in named:
            problems.append(f"{base}/{table}: the marker names run {marker['run']}, the manifest {sorted(named)}")
        runs.add(marker["run"])
    if len(runs) > 1:
        problems.append(f"base {base}: its markers name runs {sorted(runs)}")
    return (runs.pop() if len(runs) == 1 else None), problems


def outcome(p: subprocess.Popen) -> tuple[str, str]:
    out, err = p.communicate(timeout=900)
    if p.returncode == 0:
        return "ran", ""
    text = err.strip().splitlines()
    refused = next((l for l in text if REFUSAL in l), None)
    if refused:
        return "refused", refused
    return "failed", "\n".join(text[-5:])


def prepare(engine: str, work: Path, students: int) -> tuple[Path, Path]:
    source = work / "source"
    if not source.exists():
        subprocess.run([sys.executable, str(SHARED / "bench" / "gen.py"), "--students", str(students), "--out",
                        str(source), "--seed", "26"], check=True, capture_output=True)
    warehouse = work / f"warehouse-{engine}"
    if engine != "etl":
        # Base b reads the students table: one ETL run first.
        subprocess.run(command("etl", source, warehouse, ""), check=True, capture_output=True)
    return source, warehouse


def race(engine: str, rounds: int, work: Path, students: int, kill: bool) -> dict:
    source, warehouse = prepare(engine, work, students)
    base = base_of(engine)
    tally = {"engine": engine, "rounds": rounds, "both ran": 0, "one refused": 0, "failed": 0,
             "violations": 0, "after": 0, "seconds": 0.0}
    started = time.monotonic()
    for n in range(rounds):
        pair = [subprocess.Popen(command(engine, source, warehouse, f"r{n}-{i}"), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for i in range(2)]
        results = [outcome(p) for p in pair]
        kinds = sorted(k for k, _ in results)
        if kinds == ["ran", "ran"]:
            tally["both ran"] += 1
        elif kinds == ["ran", "refused"]:
            tally["one refused"] += 1
        else:
            tally["failed"] += 1
            print(f"  {engine} round {n}: {results}", file=sys.stderr)
        _, problems = whole(warehouse, base)
        # Then a run alone, which must succeed and name itself everywhere.
        alone = subprocess.run(command(engine, source, warehouse, f"r{n}-after"), capture_output=True, text=True)
        run, after = whole(warehouse, base)
        if alone.returncode == 0 and not after:
            tally["after"] += 1
        problems += after
        if alone.returncode != 0:
            problems.append(f"the run after both failed: {alone.stderr.strip().splitlines()[-1:]}")
        if problems:
            tally["violations"] += 1
            print(f"  {engine} round {n}: {problems}", file=sys.stderr)
        print(f"{engine} round {n}: {' / '.join(k for k, _ in results)}; after: run {run}, "
              f"{'whole' if not problems else 'BROKEN'}", flush=True)
    if kill:
        tally.update(kill_mid_write(engine, source, warehouse))
    tally["seconds"] = round(time.monotonic() - started, 1)
    return tally


def kill_mid_write(engine: str, source: Path, warehouse: Path) -> dict:
    """SIGKILL a run once it holds the lease and has written some of its files, then run again."""
    base = base_of(engine)
    lease_file = warehouse / base / "_runs" / "lease.json"
    p = subprocess.Popen(command(engine, source, warehouse, "killed"), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    holding = None
    while time.monotonic() < deadline and p.poll() is None:
        try:
            lease = json.loads(lease_file.read_text())
        except (OSError, ValueError):
            lease = {}
        if not lease.get("released") and f"pid {p.pid} " in lease.get("holder", ""):
            if any(f.is_file() for f in (warehouse / base).glob(f"*/run={lease['run']}/**/*")):
                holding = lease
                break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    r = subprocess.run(command(engine, source, warehouse, "after-kill"), capture_output=True, text=True)
    run, problems = whole(warehouse, base)
    # Objects of the killed run (a write it had not finished is no object: a hidden temporary
    # file here, an incomplete multipart upload on S3, which the buckets' lifecycle rule aborts).
    leftovers = sorted({str(f) for f in (warehouse / base).glob("*/run=*/**/*")
                        if holding and f"run={holding['run']}" in f.parts and f.is_file()
                        and not (f.name.startswith(".") and f.name.endswith(".tmp"))})
    ok = holding is not None and r.returncode == 0 and not problems and not leftovers
    print(f"{engine} kill -9: {'mid-write, holding the lease of run ' + holding['run'] if holding else 'NOT caught mid-write'}; "
          f"the next run {'proceeded' if r.returncode == 0 else 'FAILED: ' + r.stderr.strip()[-300:]}, "
          f"base {'whole' if not problems else problems} (run {run}); the killed run's files "
          f"{'removed' if not leftovers else 'LEFT'}", flush=True)
    return {"killed mid-write": holding is not None, "after kill": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--engines", default="etl,site-events,spark")
    ap.add_argument("--students", type=int, default=2000)
    ap.add_argument("--kill", action="store_true", help="also kill a run mid-write (see above)")
    ap.add_argument("--work", type=Path, default=None, help="folder for the data (default: a new temporary one)")
    args = ap.parse_args()
    import tempfile
    work = args.work or Path(tempfile.mkdtemp(prefix="pdcase-race-"))
    work.mkdir(parents=True, exist_ok=True)
    results = [race(e, args.rounds, work, args.students, args.kill) for e in args.engines.split(",")]
    print(json.dumps(results, indent=2))
    bad = any(r["violations"] or r["failed"] or r["after"] != r["rounds"] or (args.kill and not r["after kill"])
              for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
