#!/usr/bin/env python3
"""A code-only change through `deploy --hotswap` against a full change-set deploy, on the
local emulator, alternated in one run: wall time and AWS requests of each.

    python bench/hotswap.py --deployer target/debug/deployer \\
        --bootstrap target/x86_64-unknown-linux-musl/release/bootstrap \\
        --emulator-venv "$(scripts/setup-emulator)" [--rounds 3]

Each round makes two code changes (the release bootstrap with distinct bytes appended: a new
zip and CodeSha256 each time) and deploys one with `--hotswap`, the other without. The
requests are counted by the deployer itself (`DEPLOYER_COUNT_REQUESTS`). The emulator answers
in milliseconds where CloudFormation takes tens of seconds per change set, so these times
understate the difference on AWS; the request counts carry over.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scripts"))
import local_pipeline as lp  # noqa: E402

STAGE = "benchhot"


def deploy(deployer, env, binary, *extra):
    started = time.monotonic()
    r = subprocess.run([deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", str(binary), *extra],
                       env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if r.returncode != 0:
        sys.exit(f"deploy {' '.join(extra)} failed:\n{r.stderr}")
    requests = int(re.search(r"deployer: (\d+) AWS requests", r.stderr).group(1))
    return seconds, requests, r.stderr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--deployer", required=True)
    ap.add_argument("--bootstrap", required=True, type=Path)
    ap.add_argument("--emulator-venv", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = lp.free_port()
        proc, endpoint, cert = lp.start_emulator(args.emulator_venv, tmp / "state", port)
        try:
            os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": lp.REGION, "AWS_DEFAULT_REGION": lp.REGION,
                               "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                               "AWS_CA_BUNDLE": str(cert), "SSL_CERT_FILE": str(cert)})
            env = {**os.environ, **lp.deploy_identity(args.deployer, STAGE), "DEPLOYER_COUNT_REQUESTS": "1"}
            original = args.bootstrap.read_bytes()
            deploy(args.deployer, env, args.bootstrap)
            results = {"hotswap": [], "full": []}
            n = 0
            for _ in range(args.rounds):
                for kind, extra in (("hotswap", ["--hotswap"]), ("full", [])):
                    n += 1
                    changed = tmp / f"bootstrap-{n}"
                    changed.write_bytes(original + f"\0change {n}\0".encode())
                    changed.chmod(0o755)
                    seconds, requests, stderr = deploy(args.deployer, env, changed, *extra)
                    if kind == "hotswap" and "hotswapped without a change set" not in stderr:
                        sys.exit(f"the hotswap did not hotswap:\n{stderr}")
                    results[kind].append((seconds, requests))
                    print(f"{kind:8} {seconds:6.2f} s  {requests:4} AWS requests", flush=True)
                    if os.environ.get("BENCH_VERBOSE"):
                        print(stderr)
        finally:
            lp.stop(proc)
    hot = statistics.mean(s for s, _ in results["hotswap"])
    full = statistics.mean(s for s, _ in results["full"])
    print(f"mean: hotswap {hot:.2f} s, full {full:.2f} s; hotswap / full = {hot / full:.2f}")
    print(f"requests: hotswap {[r for _, r in results['hotswap']]}, full {[r for _, r in results['full']]}")


if __name__ == "__main__":
    main()
