"""Shared fixtures: the `deployer` binary and templates it renders for the test stages."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The project's shared material (fixtures, data generator) sits beside the clone, as in CI.
SHARED = Path(os.environ.get("PDCASE_SHARED", ROOT.parent / "shared"))
VENV_BIN = Path(sys.executable).parent

# The stages every template gate runs on: the default stage; `prod` configured as protected
# (hence hardened) in another region, with an organization's access-log bucket; and a stage
# name of the maximum allowed length (17 characters), hardened with a log bucket of its own,
# its base b on EMR Serverless in a VPC of the account's (the application's network), with
# tags of the user's (`tags:`, on every taggable resource), resources of the user's (a DynamoDB
# table under the stage's key and an alarm on the ETL's errors, `resources:`) and an override
# of a pipeline resource's property (`overrides:`): every gate runs on the whole template.
# Both hardened stages hold base a's state machine (`base_a_engine`: `auto` on prod, `sharded`
# on the longest).
MAX_STAGE = "abcdefghij-123456"
STAGES = ["alice", "prod", MAX_STAGE]
HARDENED_STAGES = {"prod", MAX_STAGE}
LOG_BUCKET_STAGES = {"prod"}  # hardened, with `access_logs_bucket` configured
CONFIG = f"""\
stages:
  prod:
    protected: true
    region: eu-west-1
    lambda: {{memory_mb: 3008, timeout_seconds: 300}}
    emr: {{max_vcpu: 64, max_memory_gb: 256, idle_stop_minutes: 10}}
    log_retention_days: 365
    access_logs_bucket: acme-s3-access-logs-123456789012-eu-west-1
    base_a_engine: auto
  {MAX_STAGE}:
    hardened: true
    base_b_engine: emr
    base_a_engine: sharded
    tags: {{team: data-platform, cost-center: "4711"}}
    emr: {{subnet_ids: [subnet-0123456789abcdef0, subnet-0123456789abcdef1], security_group_ids: [sg-0123456789abcdef0]}}
    resources:
      Resources:
        UsageTable:
          Type: AWS::DynamoDB::Table
          Properties:
            BillingMode: PAY_PER_REQUEST
            AttributeDefinitions: [{{AttributeName: id, AttributeType: S}}]
            KeySchema: [{{AttributeName: id, KeyType: HASH}}]
            PointInTimeRecoverySpecification: {{PointInTimeRecoveryEnabled: true}}
            SSESpecification: {{SSEEnabled: true, SSEType: KMS, KMSMasterKeyId: !Ref StageKey}}
        AlertsTopic:
          Type: AWS::SNS::Topic
          Properties: {{KmsMasterKeyId: !Ref StageKey}}
        EtlErrorsAlarm:
          Type: AWS::CloudWatch::Alarm
          Properties:
            AlarmDescription: the ETL failed
            AlarmActions: [!Ref AlertsTopic]
            Namespace: AWS/Lambda
            MetricName: Errors
            Dimensions: [{{Name: FunctionName, Value: !Ref EtlFunction}}]
            Statistic: Sum
            Period: 300
            EvaluationPeriods: 1
            Threshold: 1
            ComparisonOperator: GreaterThanOrEqualToThreshold
            TreatMissingData: notBreaching
      Outputs:
        UsageTableName: {{Value: !Ref UsageTable, Description: the usage table}}
    overrides:
      EtlFunction: {{Description: the ETL of the longest stage name}}
"""


def deployer_path() -> Path:
    if "DEPLOYER_BIN" in os.environ:
        return Path(os.environ["DEPLOYER_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pdcase" / "target"))
    return target / "debug" / "deployer"


@pytest.fixture(scope="session")
def deployer() -> Path:
    path = deployer_path()
    if not path.exists():
        pytest.fail(f"{path} does not exist: run `cargo build` first (scripts/test does)")
    return path


def table_file(warehouse: Path, table: str, base: str = "a") -> Path:
    """The one data file of a base-a table in a local warehouse folder, as its manifest names it
    (a reader never lists the table's folder: it also holds the previous run's file)."""
    manifest = warehouse / base / table / "_symlink_format_manifest" / "manifest"
    lines = manifest.read_text().splitlines()
    assert len(lines) == 1, (table, lines)
    assert lines[0].startswith("file:"), lines
    return Path(lines[0][len("file:"):])


def messages(stderr: str) -> list[str]:
    """Standard error's lines, without the line every verb that reads the configuration starts
    with (`config: FILE`, or that it used the built-in defaults)."""
    return [l for l in stderr.splitlines() if not l.startswith("config: ")]


def run(args, **kw) -> subprocess.CompletedProcess:
    """A command, its output captured. A `deployer deploy` (or `watch`) run as a deploy identity
    is preceded by `deployer bootstrap` of its stage as the account root, as an administrator
    bootstraps a stage once before its CI identity deploys it (README, "A deploy identity for
    CI"): the deploy identity may not create the CloudFormation role it deploys through."""
    args = [str(a) for a in args]
    bootstrap_as_root(args, kw.get("env"), kw.get("cwd"))
    return subprocess.run(with_approval(args), capture_output=True, text=True, **kw)


def with_approval(args: list) -> list:
    """A `deployer deploy` or `watch` runs without a terminal here, where a change that
    broadens IAM access (every first deploy) is refused without `--require-approval never`
    (issue 27): the tests pass it, as a CI job that reviewed the diff would. A test of the
    approval itself passes its own value, which is kept."""
    if not args or not args[0].endswith("deployer") or "--require-approval" in args:
        return args
    rest = args[1:]
    if rest[:1] == ["--config"]:
        rest = rest[2:]
    if rest[:1] in (["deploy"], ["watch"]):
        return [*args, "--require-approval", "never"]
    return args


def bootstrap_as_root(args: list, env: dict | None, cwd=None):
    """`deployer [--config F] bootstrap --stage S` as the root, before a deploy or watch of S by
    a deploy identity (an idempotent no-op when the bootstrap stack is up to date)."""
    if not env or env.get("AWS_ACCESS_KEY_ID") in (None, "test") or "--stage" not in args:
        return
    rest = args[1:]
    if rest[:1] == ["--config"]:
        rest = rest[2:]
    if not args[0].endswith("deployer") or rest[:1] not in (["deploy"], ["watch"]):
        return
    cmd = [args[0]]
    if "--config" in args:
        cmd += ["--config", args[args.index("--config") + 1]]
    cmd += ["bootstrap", "--stage", args[args.index("--stage") + 1]]
    root = {**env, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    # From the command's own folder: without --config, it finds the same pipeline.yaml.
    r = subprocess.run(cmd, capture_output=True, text=True, env=root, timeout=600, cwd=cwd or ROOT)
    assert r.returncode == 0, f"bootstrap as root failed:\n{r.stderr}"


def tool(name: str) -> str:
    """A command of the test virtualenv (cfn-lint, checkov)."""
    path = VENV_BIN / name
    return str(path) if path.exists() else shutil.which(name)


@pytest.fixture(scope="session")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "pipeline.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="session")
def rendered(deployer, config_file, tmp_path_factory):
    """{(stage, format): path} of the rendered templates."""
    out = tmp_path_factory.mktemp("templates")
    paths = {}
    for stage in STAGES:
        for fmt in ("yaml", "json"):
            path = out / f"{stage}.{fmt}"
            r = run([deployer, "--config", config_file, "synth", "--stage", stage, "--format", fmt, "--out", path])
            assert r.returncode == 0, r.stderr
            paths[(stage, fmt)] = path
    return paths


# --- Spark ----------------------------------------------------------------------------------

SPARK_JOB_DIR = ROOT / "crates" / "etl" / "spark"
sys.path.insert(0, str(SPARK_JOB_DIR))


@pytest.fixture(scope="session")
def spark():
    if not (SHARED / "fixtures").is_dir():
        pytest.fail(f"{SHARED} has no fixtures/: clone next to shared/ or set PDCASE_SHARED")
    """A local PySpark session (2 cores, as on this machine), shared by the Spark tests."""
    from pyspark.sql import SparkSession

    # Loopback only: Spark otherwise binds its driver to the first network interface.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .appName("site-events-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


# --- The local AWS emulator (MiniStack) -------------------------------------------------------

class Emulator:
    """A MiniStack server on a loopback port, enforcing IAM and SigV4 (`AUTH=true`) and serving
    HTTPS only (`USE_SSL=1`), as AWS does. Tests inspect and prepare state as the account root
    (`client`); the CLI acts as an IAM user holding the stage's deploy policy (`env`)."""

    ROOT_KEYS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

    def __init__(self, endpoint: str, proc: subprocess.Popen, log: Path, cert: Path):
        self.endpoint = endpoint
        self.proc = proc
        self.log = log
        self.cert = cert
        self._users: dict[str, dict] = {}

    def client(self, service: str, keys: dict | None = None):
        """A boto3 client as the account root (or as the identity of `keys`)."""
        import boto3

        keys = keys or self.ROOT_KEYS
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            verify=str(self.cert),
        )

    def env(self, stage: str | None = None) -> dict:
        """The environment the CLI runs in: the emulator's HTTPS endpoint and certificate, and
        the credentials of `stage`'s deploy identity (an IAM user holding exactly the policies
        `deployer policy --stage S` prints); without a stage, the account root's."""
        keys = self.deploy_identity(stage) if stage else self.ROOT_KEYS
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "SSL_CERT_FILE": str(self.cert),
            "AWS_CA_BUNDLE": str(self.cert),
            **keys,
        }

    def deploy_identity(self, stage: str) -> dict:
        """Access keys of an IAM user `deployer-<stage>` with the stage's deploy policies
        attached as managed policies, as a CI identity would have them."""
        import json

        if stage in self._users:
            return self._users[stage]
        r = run([deployer_path(), "policy", "--stage", stage, "--account", "000000000000"])
        assert r.returncode == 0, r.stderr
        parts = [(part["name"], part["document"]) for part in json.loads(r.stdout)["policies"]]
        self._users[stage] = self.user(f"deployer-{stage}", parts)
        return self._users[stage]

    def user(self, name: str, policies: list) -> dict:
        """Access keys of a new IAM user `name` holding the managed policies `policies`
        ([(policy name, document)]), made as the root."""
        import json

        iam = self.client("iam")
        iam.create_user(UserName=name)
        for policy_name, document in policies:
            arn = iam.create_policy(PolicyName=policy_name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
            iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def admin_cloudformation_role(self) -> str:
        """A role CloudFormation may act as with every permission: what a person in the
        console passes for an out-of-band change of a stack that has a service role (AWS keeps
        using the stack's role otherwise, and the stage's role is held to the stage's names)."""
        import json

        iam = self.client("iam")
        name = "test-admin-cloudformation"
        try:
            return iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            pass
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Principal": {"Service": "cloudformation.amazonaws.com"}}]}
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        return arn

    def reset(self):
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=str(self.cert))
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/_ministack/reset", method="POST"),
                               timeout=10, context=context)
        self._users.clear()

    def stop(self):
        for proc in (getattr(self, "proxy", None), self.proc):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator_command(venv: str) -> list[str]:
    """MiniStack's command. As root with USE_SSL it would also bind 127.0.0.1:443: without
    the capability to bind low ports it listens only on its own port (../shared/EMULATOR.md)."""
    command = [f"{venv}/bin/ministack"]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        command = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", *command]
    return command


def start_emulator(d: Path, functions_through_fault_proxy: bool = False) -> Emulator:
    """MiniStack in folder `d` on a free loopback port, with IAM and TLS enforced, started with
    a clean environment so no host credentials leak into the Lambda processes it runs
    (DEVELOPERS.md). Each deployed function runs as a session of its own execution role.

    With `functions_through_fault_proxy`, the functions reach the emulator through
    scripts/emulator/fault_proxy.py (the `AWS_ENDPOINT_URL` the emulator hands them), which
    injects the S3 faults `em.faults` names while that file exists; the CLI and the tests still
    go to the emulator directly."""
    import ssl
    import time
    import urllib.request

    venv = subprocess.run([str(ROOT / "scripts" / "setup-emulator")], capture_output=True, text=True, check=True).stdout.strip()
    (d / "tmp").mkdir()
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}"
    proxy_port = free_port() if functions_through_fault_proxy else None
    # Where MiniStack writes its self-signed certificate (SANs localhost, 127.0.0.1).
    cert = d / "tmp" / "ministack-tls" / "server.crt"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(d),
        "TMPDIR": str(d / "tmp"),
        "LANG": "C.UTF-8",
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "MINISTACK_HOST": "localhost",
        # What the functions call (MiniStack sets it in every function's environment).
        "AWS_ENDPOINT_URL": f"https://127.0.0.1:{proxy_port}" if proxy_port else endpoint,
        # The functions (Rust, rustls) trust the emulator's certificate through this; the
        # proxy serves the same certificate.
        "SSL_CERT_FILE": str(cert),
        "AUTH": "true",
        "USE_SSL": "1",
        "LAMBDA_EXECUTOR": "local",
        "ATHENA_ENGINE": "duckdb",
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
        "S3_DATA_DIR": str(d / "s3"),
        "STATE_DIR": str(d / "state"),
        # EMR Serverless runs no job here (scripts/emulator/pdcase_emr_serverless.py): a job run
        # is RUNNING this long, then SUCCESS; long enough for a test to see a deploy wait.
        "PDCASE_EMR_SERVERLESS_RUN_SECONDS": "30",
    }
    log = d / "ministack.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(emulator_command(venv), env=env, cwd=d, stdout=out, stderr=subprocess.STDOUT)
    em = Emulator(endpoint, proc, log, cert)
    deadline = time.time() + 60
    while True:
        try:
            context = ssl.create_default_context(cafile=str(cert))
            urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=2, context=context)
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"MiniStack did not start:\n{em.log_tail()}")
            time.sleep(0.2)
    if proxy_port:
        em.faults = d / "s3-faults.json"
        with open(d / "fault-proxy.log", "wb") as out:
            em.proxy = subprocess.Popen(
                [f"{venv}/bin/python", str(ROOT / "scripts" / "emulator" / "fault_proxy.py"),
                 "--port", str(proxy_port), "--upstream", f"127.0.0.1:{port}", "--cert", str(cert),
                 "--key", str(cert.with_name("server.key")), "--faults", str(em.faults)],
                stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                socket.create_connection(("127.0.0.1", proxy_port), timeout=1).close()
                break
            except OSError:
                if em.proxy.poll() is not None or time.time() > deadline:
                    em.stop()
                    pytest.fail(f"the fault proxy did not start:\n{(d / 'fault-proxy.log').read_text()}")
                time.sleep(0.1)
    return em


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """MiniStack (`start_emulator`), for the whole session."""
    em = start_emulator(tmp_path_factory.mktemp("ministack"))
    yield em
    em.stop()


@pytest.fixture(scope="session")
def package(deployer, tmp_path_factory) -> dict:
    """The release artifacts (`deployer package`): the musl `bootstrap` zip and the Spark job."""
    import json

    out = tmp_path_factory.mktemp("package")
    r = run([deployer, "package", "--out", out], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
