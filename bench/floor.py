#!/usr/bin/env python3
"""Each base's run against the floor of this machine (issue 29, part 2): what no implementation
can avoid for the same inputs and outputs (crates/etl/examples/floor.rs: reading the inputs from
the page cache, a SIMD JSON tokenizer's pass over them, writing the outputs' bytes, each on both
cores), and the engine's ratio to that sum.

    cargo build --release -p deployer && cargo build --release -p etl --example floor
    python3 bench/floor.py --deployer "$CARGO_TARGET_DIR/release/deployer" \\
        --floor "$CARGO_TARGET_DIR/release/examples/floor" --students-a 1000000 --students-b 100000

Runs alternate (engine, floor) `--repeat` times; medians. The floor's tokenizer cuts each JSON
array into chunks at record starts and shares chunks and NDJSON files between two threads
("floor": its wall time); its CPU time over two cores is what a perfect share reaches ("split").
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
sys.path.insert(0, str(HERE))
from etl_duckdb import dataset, warm  # noqa: E402


def files_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def timed(cmd) -> tuple:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0, p.stdout


def compare(name, engine_cmd, out_dir: Path, inputs, floor_bin, repeat, reset):
    warm(inputs)
    engine, floors = [], []
    out_bytes = None
    for _ in range(repeat):
        reset()
        wall, _ = timed(engine_cmd)
        engine.append(wall)
        out_bytes = files_size(out_dir)
        _, text = timed([str(floor_bin), "--out-bytes", str(out_bytes), "--out-dir", "/tmp/pdcase-floor",
                         *map(str, inputs)])
        floors.append(json.loads(text))
    med = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
    e = statistics.median(engine)
    row = dict(base=name, input_mb=round(med["input_bytes"] / 1e6), output_mb=round(out_bytes / 1e6),
               engine_s=round(e, 2), read_s=round(med["read_s"], 2), tokenize_s=round(med["tokenize_wall_s"], 2),
               tokenize_split_s=round(med["tokenize_split_s"], 2), write_s=round(med["write_s"], 2),
               floor_s=round(med["floor_s"], 2), floor_split_s=round(med["floor_split_s"], 2),
               ratio=round(e / med["floor_s"], 2), ratio_split=round(e / med["floor_split_s"], 2))
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deployer", type=Path, required=True)
    ap.add_argument("--floor", type=Path, required=True)
    ap.add_argument("--students-a", type=int, default=1_000_000)
    ap.add_argument("--students-b", type=int, default=100_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/pdcase-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from spark_site_events import prepare

    rows = []
    src_a = dataset(args.data, args.students_a)
    out_a = Path("/tmp/pdcase-floor-a")
    rows.append(compare(
        f"a ({args.students_a:,} students)",
        [str(args.deployer), "invoke", "etl", "--local", "--source", str(src_a), "--warehouse", str(out_a)],
        out_a, sorted((src_a / "a").glob("*.json")), args.floor, args.repeat,
        lambda: shutil.rmtree(out_a, ignore_errors=True)))

    data_b = args.data / f"b-{args.students_b}"
    prepare(data_b, args.students_b)
    warehouse = data_b / "wh-floor"
    if not (warehouse / "a" / "students" / "_symlink_format_manifest").exists():
        subprocess.run([str(args.deployer), "invoke", "etl", "--local", "--source", str(data_b),
                        "--warehouse", str(warehouse)], check=True, stdout=subprocess.DEVNULL)
    run = [0]

    def reset_b():
        shutil.rmtree(warehouse / "b", ignore_errors=True)
        run[0] += 1

    rows.append(compare(
        f"b ({args.students_b:,} students)",
        [str(args.deployer), "invoke", "site-events", "--local", "--source", str(data_b), "--warehouse",
         str(warehouse), "--run-id", "floor"],
        warehouse / "b", sorted((data_b / "b").glob("part-*.json")), args.floor, args.repeat, reset_b))

    print()
    print("| base | input MB | output MB | engine s | read s | tokenize s (wall / CPU over 2) | write s | floor s (/ split) | engine / floor (/ split) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['base']} | {r['input_mb']} | {r['output_mb']} | {r['engine_s']} | {r['read_s']} | "
              f"{r['tokenize_s']} / {r['tokenize_split_s']} | {r['write_s']} | {r['floor_s']} / {r['floor_split_s']} | "
              f"{r['ratio']} / {r['ratio_split']} |")


if __name__ == "__main__":
    main()
