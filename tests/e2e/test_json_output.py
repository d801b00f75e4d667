"""Issue 27, parts 1 and 2: every verb that prints a result prints one JSON document with
`--format json`, each with its `format_version`, and a usage error exits 64 (never 2, which
means "changes" to `diff` and "drift" to `drift`).

Relies on: MiniStack with IAM and TLS enforced (the verbs run as the stage's deploy identity,
`gc` as the root, which may list every stack), the deployed functions (`trigger --wait` waits
for a real run)."""
import json

from conftest import ROOT, run
from test_deploy import deployer_cmd

STAGE = "e2ejson"


def document(r) -> dict:
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1, doc
    return doc


def test_every_verb_prints_a_versioned_json_document(deployer, emulator, package, tmp_path):
    emulator.reset()
    binary = package["lambda"]["bootstrap"]
    outputs_file = tmp_path / "outputs.json"
    d = document(deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary,
                              "--format", "json", "--outputs-file", str(outputs_file)))
    assert d["stage"] == STAGE and d["outcome"] == "deployed" and d["outputs"]["WarehouseBucketName"]
    assert json.loads(outputs_file.read_text()) == d
    # Nothing changed: said so, with the same outputs.
    again = document(deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary,
                                  "--format", "json"))
    assert again["outcome"] == "up-to-date" and again["outputs"] == d["outputs"]

    info = document(deployer_cmd(deployer, emulator, "info", "--stage", STAGE, "--format", "json"))
    assert [s["deployed"] for s in info["stacks"]] == [True, True]
    assert info["stacks"][1]["outputs"] == d["outputs"]

    root = emulator.env()
    boot = document(run([deployer, "bootstrap", "--stage", STAGE, "--format", "json"], env=root, cwd=ROOT))
    assert boot["outcome"] == "up-to-date" and boot["stack"].endswith("-bootstrap")

    diff = document(deployer_cmd(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", binary,
                                 "--format", "json"))
    assert diff["stage"] == STAGE

    s3 = emulator.client("s3")
    for f in sorted((ROOT / "samples" / "a").glob("*.json")):
        s3.upload_file(str(f), d["outputs"]["SourceBucketName"], f"a/{f.name}")
    trig = document(deployer_cmd(deployer, emulator, "trigger", "etl", "--stage", STAGE, "--wait", "--format", "json"))
    assert trig["message_id"] and trig["report"]["run"]

    runs = document(deployer_cmd(deployer, emulator, "runs", "--stage", STAGE, "--format", "json"))
    assert trig["report"]["run"] in {r["run"] for r in runs["runs"]}

    q = document(deployer_cmd(deployer, emulator, "query", "--stage", STAGE, "SELECT 1 AS one", "--format", "json"))
    assert q["rows"] == [{"one": "1"}]

    r = deployer_cmd(deployer, emulator, "logs", "etl", "--stage", STAGE, "--format", "json")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines and all(l["format_version"] == 1 and "message" in l and l["timestamp"] for l in lines)

    gc = document(run([deployer, "gc", "--stage", STAGE, "--format", "json"], env=root, cwd=ROOT))
    assert gc["deleted"] is False and gc["referenced"] >= 2

    pol = document(run([deployer, "policy", "--stage", STAGE]))
    assert pol["policies"] and pol["role"] == "deployer"
    val = document(run([deployer, "validate", "--format", "json"], cwd=tmp_path))
    assert val["file"] is None and val["stages"] == []

    down = document(deployer_cmd(deployer, emulator, "teardown", "--stage", STAGE, "--yes", "--format", "json"))
    assert sorted(down["stacks_deleted"]) == sorted(s["name"] for s in info["stacks"])
    assert down["left"] == []


def test_a_usage_error_exits_64_and_help_exits_0(deployer):
    r = run([deployer, "diff", "--stage", "alice", "--fromat", "json"])
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert "--fromat" in r.stderr
    r = run([deployer, "deploy"])
    assert r.returncode == 64 and "--stage" in r.stderr
    r = run([deployer, "diff", "--help"])
    assert r.returncode == 0 and "--format" in r.stdout
