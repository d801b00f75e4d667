"""Shared fixtures: the `deployer` binary and templates it renders for the test stages."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The project's shared material (fixtures, data generator) sits beside the clone, as in CI.
SHARED = Path(os.environ.get("PDCASE_SHARED", ROOT.parent / "shared"))
VENV_BIN = Path(sys.executable).parent

# The stages every template gate runs on: the default stage, `prod` configured as protected
# in another region, and a stage name of the maximum allowed length (17 characters).
MAX_STAGE = "abcdefghij-123456"
STAGES = ["alice", "prod", MAX_STAGE]
CONFIG = """\
stages:
  prod:
    protected: true
    region: eu-west-1
    lambda: {memory_mb: 3008, timeout_seconds: 300}
    emr: {core_instance_count: 2, core_instance_type: r5.xlarge}
    log_retention_days: 365
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


def run(args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


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
    """A MiniStack server on a loopback port, with boto3 clients pointed at it."""

    def __init__(self, endpoint: str, proc: subprocess.Popen, log: Path):
        self.endpoint = endpoint
        self.proc = proc
        self.log = log

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def env(self) -> dict:
        """The environment a tool needs to reach the emulator (dummy credentials)."""
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }

    def reset(self):
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/_ministack/reset", method="POST"), timeout=10)

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """MiniStack on a free loopback port, started with a clean environment so no host
    credentials leak into the Lambda processes it runs (DEVELOPERS.md)."""
    import time
    import urllib.request

    venv = subprocess.run([str(ROOT / "scripts" / "setup-emulator")], capture_output=True, text=True, check=True).stdout.strip()
    d = tmp_path_factory.mktemp("ministack")
    (d / "tmp").mkdir()
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(d),
        "TMPDIR": str(d / "tmp"),
        "LANG": "C.UTF-8",
        "BIND_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "MINISTACK_HOST": "localhost",
        "AWS_ENDPOINT_URL": endpoint,
        "LAMBDA_EXECUTOR": "local",
        "ATHENA_ENGINE": "duckdb",
        "IOT_MTLS_ENABLED": "0",
        "SFTP_ENABLED": "0",
        "S3_DATA_DIR": str(d / "s3"),
        "STATE_DIR": str(d / "state"),
    }
    log = d / "ministack.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([f"{venv}/bin/ministack"], env=env, cwd=d, stdout=out, stderr=subprocess.STDOUT)
    em = Emulator(endpoint, proc, log)
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/_ministack/health", timeout=2)
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"MiniStack did not start:\n{em.log_tail()}")
            time.sleep(0.2)
    yield em
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def package(deployer, tmp_path_factory) -> dict:
    """The release artifacts (`deployer package`): the musl `bootstrap` zip and the Spark job."""
    import json

    out = tmp_path_factory.mktemp("package")
    r = run([deployer, "package", "--out", out], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)
