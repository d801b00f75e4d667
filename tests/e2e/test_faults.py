"""Issue 26, part 5: faults in the middle. With a share of the functions' S3 requests answered
with 503 SlowDown or 500 InternalError, or their connection reset before S3 gets them or after
S3 carried them out (the function cannot tell whether its write happened, and sends it again),
each run of base a (the ETL function) and base b (the site-events function) either finishes
with the right tables or fails with a clear error, and after every outcome each base's tables
and markers name one run, whose files exist.

The faults come from scripts/emulator/fault_proxy.py, a TLS proxy on loopback that this
module's own emulator hands to the functions as their `AWS_ENDPOINT_URL`: requests signed with
the functions' temporary credentials for S3 only; the CLI and the test reach the emulator
directly.

`scripts/faults` runs this with more runs (PDCASE_FAULT_RUNS, PDCASE_FAULT_RATE) and prints the
figures recorded in docs/BENCHMARKS.md, "Faults in the middle".

Relies on: MiniStack with IAM and TLS enforced, its Lambda asynchronous invocations and their
retries (the emulator's spacing: seconds, not minutes), the fault proxy. The functions' SDK
retries (standard mode, five attempts: etl::handlers::FUNCTION_ATTEMPTS) run for real.
"""
import json
import os

import pytest

from conftest import ROOT, start_emulator
from test_deploy import STAGE_CONFIGS, deployer_cmd
from test_etl_lambda import function_logs

STAGE = "e2efaults"
ACCOUNT, REGION = "000000000000", "us-east-1"
SOURCE = f"pdcase-{STAGE}-source-{ACCOUNT}-{REGION}"
WAREHOUSE = f"pdcase-{STAGE}-warehouse-{ACCOUNT}-{REGION}"
BASES = {
    "a": ["students", "follows", "sessions", "subscriptions"],
    "b": ["events", "events-by-city", "events-by-state", "events-by-pagename", "events-by-client-type",
          "events-by-university", "events-by-course", "sessions-by-campaign"],
}
RUNS = int(os.environ.get("PDCASE_FAULT_RUNS", "3"))
RATE = float(os.environ.get("PDCASE_FAULT_RATE", "0.05"))


def base_whole(s3, base: str) -> tuple[str, dict]:
    """The run every table of `base` names; its rows by table. Fails on a partial base."""
    runs, rows = set(), {}
    for t in BASES[base]:
        manifest = s3.get_object(Bucket=WAREHOUSE, Key=f"{base}/{t}/_symlink_format_manifest/manifest")["Body"].read()
        keys = [line.removeprefix(f"s3://{WAREHOUSE}/") for line in manifest.decode().splitlines()]
        marker = json.loads(s3.get_object(Bucket=WAREHOUSE, Key=f"{base}/{t}/_SUCCESS")["Body"].read())
        for k in keys:
            s3.head_object(Bucket=WAREHOUSE, Key=k)
            assert f"/run={marker['run']}/" in k, (t, marker["run"], k)
        runs.add(marker["run"])
        rows[t] = marker["rows"]
    assert len(runs) == 1, (base, runs)
    return runs.pop(), rows


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """An emulator of this module's own, its functions behind the fault proxy."""
    em = start_emulator(tmp_path_factory.mktemp("ministack-faults"), functions_through_fault_proxy=True)
    yield em
    em.stop()


@pytest.fixture(scope="module")
def stage(deployer, emulator, package, tmp_path_factory):
    # Five minutes for a run, as a stage whose runs meet throttling would set: room for the
    # SDK's backoff and its attempt timeouts.
    config = tmp_path_factory.mktemp("faults") / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    lambda: {{timeout_seconds: 300}}\n")
    STAGE_CONFIGS[STAGE] = config
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    s3 = emulator.client("s3")
    for folder in ("a", "b"):
        for f in sorted((ROOT / "samples" / folder).glob("*.json")):
            s3.upload_file(str(f), SOURCE, f"{folder}/{f.name}")
    return deployer


def test_every_run_under_s3_faults_ends_whole_or_fails_clearly(stage, emulator):
    s3 = emulator.client("s3")
    # Without faults first: the rows each base must have.
    want = {}
    for what, base in (("etl", "a"), ("spark", "b")):
        r = deployer_cmd(stage, emulator, "trigger", what, "--stage", STAGE, "--wait", "--timeout-minutes", "10")
        assert r.returncode == 0, r.stderr
        want[base] = base_whole(s3, base)[1]
    emulator.faults.write_text(json.dumps({"rate": RATE, "kinds": ["slowdown", "internal", "reset", "reset-after"]}))
    outcomes = {"a": {"succeeded": 0, "failed": 0}, "b": {"succeeded": 0, "failed": 0}}
    errors = []
    try:
        for _ in range(RUNS):
            for what, base in (("etl", "a"), ("spark", "b")):
                r = deployer_cmd(stage, emulator, "trigger", what, "--stage", STAGE, "--wait", "--timeout-minutes", "10")
                if r.returncode == 0:
                    outcomes[base]["succeeded"] += 1
                    run, rows = base_whole(s3, base)
                    assert json.loads(r.stdout)["run"] == run
                    assert rows == want[base], (base, rows)
                else:
                    outcomes[base]["failed"] += 1
                    error = next((l for l in r.stderr.splitlines() if l.startswith("error: ")), r.stderr[-500:])
                    # A clear error: which run, what failed.
                    if not (error.startswith("error: run ") and " failed: " in error):
                        function = "etl" if base == "a" else "site-events"
                        pytest.fail(f"{error}\n{function} logs:\n{function_logs(emulator, function, STAGE)[-6000:]}")
                    # A write S3 carried out whose answer a reset lost is the run's own: a run
                    # never loses its lease to itself (crates/etl/src/lease.rs, `Lease::write`).
                    run = error.removeprefix("error: run ").split()[0]
                    assert f"lease to run {run}" not in error, error
                    errors.append(error[:300])
                    base_whole(s3, base)  # the previous run, whole
    finally:
        injected = emulator.faults.with_name(emulator.faults.name + ".log")
        kinds = {}
        for line in (injected.read_text().splitlines() if injected.exists() else []):
            kinds[line.split()[0]] = kinds.get(line.split()[0], 0) + 1
        emulator.faults.unlink()
    # After the faults, a run of each base succeeds.
    for what, base in (("etl", "a"), ("spark", "b")):
        r = deployer_cmd(stage, emulator, "trigger", what, "--stage", STAGE, "--wait", "--timeout-minutes", "10")
        assert r.returncode == 0, r.stderr
        assert base_whole(s3, base)[1] == want[base]
    print("fault-injection:", json.dumps({"runs per base": RUNS, "rate": RATE, "faults injected": kinds,
                                          "outcomes": outcomes, "partial tables": 0, "errors": errors}))
    assert sum(kinds.values()) > 0, "no fault was injected: the proxy did not act"
