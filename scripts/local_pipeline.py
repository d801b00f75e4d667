#!/usr/bin/env python3
"""The whole pipeline on this machine, without AWS (README command 1).

Starts the local AWS emulator (MiniStack) on loopback with IAM and TLS enforced (each function
runs as its own role; the CLI acts as an IAM user holding the stage's deploy policy), deploys
stage `alice` with the real Rust functions, loads the sample exports into its source bucket, triggers the ETL through its SNS
topic (the deployed function runs inside the emulator), then base b through the EMR topic
(the stage's `base_b_engine` is `function`: the site-events function runs inside the emulator,
as on a deployed developer stage), queries the warehouse tables through Athena
(`deployer query`) and prints them.

Run it through scripts/local-pipeline, which installs and builds what it needs first.
"""
import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "000000000000"
REGION = "us-east-1"
A_TABLES = ["students", "follows", "sessions", "subscriptions"]
B_TABLES = ["events", "events-by-city", "events-by-state", "sessions-by-campaign", "events-by-pagename",
            "events-by-client-type", "events-by-university", "events-by-course"]
QUERIES = [
    ("students", "SELECT id, date, state, city, university, course, signupsource FROM students ORDER BY id"),
    ("follows", "SELECT studentid, subject, date FROM follows ORDER BY date"),
    ("sessions", "SELECT studentid, starttime, client FROM sessions ORDER BY starttime"),
    ("subscriptions", "SELECT studentid, date, type FROM subscriptions ORDER BY date"),
    ("events by city", "SELECT city, events FROM events_by_city ORDER BY events DESC, city"),
    ("events by client type", "SELECT client_type, events FROM events_by_client_type ORDER BY events DESC"),
    ("sessions by campaign", "SELECT * FROM sessions_by_campaign"),
]


def say(text):
    print(f"==> {text}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(venv: Path, state: Path, port: int):
    """MiniStack with IAM (`AUTH=true`) and HTTPS only (`USE_SSL=1`); returns the process, the
    endpoint and the certificate it serves."""
    for d in ("tmp", "s3", "state"):
        (state / d).mkdir(parents=True, exist_ok=True)
    endpoint = f"https://127.0.0.1:{port}"
    cert = state / "tmp" / "ministack-tls" / "server.crt"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(state), "TMPDIR": str(state / "tmp"), "LANG": "C.UTF-8",
        "BIND_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "MINISTACK_HOST": "localhost",
        "AWS_ENDPOINT_URL": endpoint, "SSL_CERT_FILE": str(cert), "AUTH": "true", "USE_SSL": "1",
        "LAMBDA_EXECUTOR": "local", "ATHENA_ENGINE": "duckdb",
        "IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0", "S3_DATA_DIR": str(state / "s3"), "STATE_DIR": str(state / "state"),
    }
    command = [str(venv / "bin" / "ministack")]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        # As root with USE_SSL it would also bind port 443; without the capability it cannot.
        command = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", *command]
    log = open(state / "ministack.log", "wb")
    proc = subprocess.Popen(command, env=env, cwd=state, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.time() + 60
    while True:
        try:
            context = ssl.create_default_context(cafile=str(cert))
            urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=2, context=context)
            return proc, endpoint, cert
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                sys.exit(f"the emulator did not start; see {state / 'ministack.log'}")
            time.sleep(0.2)


def deploy_identity(deployer: str, stage: str) -> dict:
    """An IAM user of the emulator holding exactly the stage's deploy policies (as the root,
    which the `test` keys are): the identity the CLI acts as."""
    iam = boto3.client("iam")
    user = f"deployer-{stage}"
    iam.create_user(UserName=user)
    r = subprocess.run([deployer, "policy", "--stage", stage, "--account", ACCOUNT], capture_output=True, text=True,
                       check=True)
    for part in json.loads(r.stdout)["policies"]:
        arn = iam.create_policy(PolicyName=part["name"], PolicyDocument=json.dumps(part["document"]))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=user, PolicyArn=arn)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def stop(proc):
    """Stops the emulator by its PID; over TLS it may linger on open connections: then killed."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_for(what, check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = check()
        if v:
            return v
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="alice")
    ap.add_argument("--deployer", required=True)
    ap.add_argument("--bootstrap", required=True, help="the musl bootstrap to deploy")
    ap.add_argument("--emulator-venv", required=True, type=Path)
    ap.add_argument("--state", type=Path, default=Path.home() / ".cache" / "pdcase" / "local-pipeline")
    ap.add_argument("--keep-running", action="store_true", help="leave the emulator running at the end")
    args = ap.parse_args()

    if args.state.exists():
        shutil.rmtree(args.state)
    port = free_port()
    say(f"starting the local AWS emulator (MiniStack) on https://127.0.0.1:{port}, IAM enforced")
    proc, endpoint, cert = start_emulator(args.emulator_venv, args.state, port)
    # This script loads data and queries as the account root; the CLI acts as the deploy identity.
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
                       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_CA_BUNDLE": str(cert), "SSL_CERT_FILE": str(cert)})
    stage = args.stage
    try:
        keys = deploy_identity(args.deployer, stage)
        env = {**os.environ, **keys}
        say(f"the CLI acts as IAM user deployer-{stage}, holding `deployer policy --stage {stage}`")
        say(f"bootstrapping stage {stage} as the account's administrator (the artifacts bucket and the "
            f"role CloudFormation deploys the stage as; the deploy identity may not create roles)")
        r = subprocess.run([args.deployer, "bootstrap", "--stage", stage], cwd=ROOT, capture_output=True, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            sys.exit(f"bootstrap failed ({r.returncode})")
        say(f"deploying stage {stage} as deployer-{stage}, through the CloudFormation role")
        # No terminal to ask on: the first deploy broadens IAM access (its roles are new), which
        # `deploy` asks a person about by default; this script has shown what it deploys.
        r = subprocess.run([args.deployer, "deploy", "--stage", stage, "--lambda-bootstrap", args.bootstrap,
                            "--require-approval", "never"],
                           env=env, cwd=ROOT, capture_output=True, text=True)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            sys.exit(f"deploy failed ({r.returncode})")
        outputs = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)
        source, warehouse = outputs["SourceBucketName"], outputs["WarehouseBucketName"]
        database, workgroup = outputs["GlueDatabaseName"], outputs["AthenaWorkGroupName"]
        s3 = boto3.client("s3")

        say(f"loading the sample exports into s3://{source}/")
        for f in sorted((ROOT / "samples").rglob("*.json")):
            key = f.relative_to(ROOT / "samples").as_posix()
            s3.upload_file(str(f), source, key)
            print(f"  {key}")

        def trigger_and_wait(what, base, tables, says):
            """Publishes to the stage's topic for `what`, then waits until every table of the
            base has a marker of one run; returns that run."""
            say(says)
            r = subprocess.run([args.deployer, "trigger", what, "--stage", stage], env=env, cwd=ROOT,
                               capture_output=True, text=True)
            print("  " + (r.stdout.strip() or r.stderr.strip()))
            if r.returncode != 0:
                sys.exit("trigger failed")

            def markers():
                runs = set()
                for t in tables:
                    try:
                        body = s3.get_object(Bucket=warehouse, Key=f"{base}/{t}/_SUCCESS")["Body"].read()
                    except s3.exceptions.NoSuchKey:
                        return None
                    runs.add(json.loads(body)["run"])
                return runs if len(runs) == 1 else None
            return wait_for(f"base {base}'s tables", markers).pop()

        run_id = trigger_and_wait("etl", "a", A_TABLES,
                                  "triggering the ETL through its topic (the Rust function runs inside the emulator)")
        print(f"  ETL run {run_id} published {', '.join(A_TABLES)}")
        b_run = trigger_and_wait("spark", "b", B_TABLES,
                                 "triggering base b through its topic (the site-events function runs inside the emulator)")
        print(f"  site-events run {b_run} published {', '.join(B_TABLES)}, each switched by its manifest")

        say(f"querying the warehouse through Athena (`deployer query`: database {database}, work group {workgroup})")
        for title, sql in QUERIES:
            r = subprocess.run([args.deployer, "query", "--stage", stage, sql], env=env, cwd=ROOT,
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.stderr.write(r.stderr)
                sys.exit(f"the query for {title} failed")
            print(f"\n{title}")
            for line in r.stdout.splitlines():
                print(f"  {line}")

        print()
        if args.keep_running:
            say("done. Next, against the emulator left running:")
        else:
            say("done. The emulator stops now; with --keep-running it stays up for these:")
        print(f"  export AWS_ENDPOINT_URL={endpoint} AWS_REGION={REGION} SSL_CERT_FILE={cert} "
              f"AWS_ACCESS_KEY_ID={keys['AWS_ACCESS_KEY_ID']} AWS_SECRET_ACCESS_KEY={keys['AWS_SECRET_ACCESS_KEY']}")
        print(f"  cargo run -p deployer -- info --stage {stage}          # stacks, status, outputs")
        print(f"  cargo run -p deployer -- query --stage {stage} \"SELECT * FROM events_by_city\"   # Athena, as a table")
        print(f"  cargo run -p deployer -- logs etl --stage {stage}      # the ETL function's log lines")
        print(f"  cargo run -p deployer -- logs site-events --stage {stage}   # base b's report")
        print(f"  cargo run -p deployer -- diff --stage {stage}          # what a deploy would change (exit 2: changes)")
        print(f"  cargo run -p deployer -- teardown --stage {stage} --yes")
        if args.keep_running:
            print(f"  kill {proc.pid}                                       # stop the emulator")
    finally:
        if not args.keep_running:
            stop(proc)


if __name__ == "__main__":
    main()
