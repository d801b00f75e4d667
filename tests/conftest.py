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
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
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
