"""Issue 14, part 3: `deployer drift --stage S` runs CloudFormation's drift detection on the
stage's stacks and reports what was changed behind their back: exit 0 in sync, 2 drifted.

Relies on: MiniStack's drift detection (it reads functions, roles, topics, buckets and log
groups from its own stores), with IAM enforced for the deploy identity's calls. What
CloudFormation reads with the caller's credentials during a detection is not checked by the
emulator.
"""
import json

from conftest import messages, ROOT, run

STAGE = "e2edrift"


def drift(deployer, env, *extra):
    return run([deployer, "drift", "--stage", STAGE, *extra], env=env, cwd=ROOT, timeout=300)


def test_a_drifted_function_and_role_are_reported_with_their_properties(deployer, emulator, package):
    emulator.reset()
    env = emulator.env(STAGE)
    r = run([deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"]],
            env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr

    r = drift(deployer, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"stage {STAGE}: in sync with its templates\n"), r.stdout

    # Changed behind CloudFormation's back, as a person in the console would.
    lam, iam = emulator.client("lambda"), emulator.client("iam")
    function = f"pdcase-{STAGE}-etl"
    expected_memory = lam.get_function_configuration(FunctionName=function)["MemorySize"]
    lam.update_function_configuration(FunctionName=function, MemorySize=expected_memory // 2)
    role = lam.get_function_configuration(FunctionName=function)["Role"].rsplit("/", 1)[1]
    expected_description = iam.get_role(RoleName=role)["Role"]["Description"]
    iam.update_role(RoleName=role, Description="edited in the console")

    r = drift(deployer, env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.startswith(f"stage {STAGE}: 2 resources drifted\n"), r.stdout
    assert f"  EtlFunction (AWS::Lambda::Function, {function}): MODIFIED" in r.stdout
    assert f"MemorySize: {expected_memory} → {expected_memory // 2} (NOT_EQUAL)" in r.stdout
    assert f"  EtlRole (AWS::IAM::Role, {role}): MODIFIED" in r.stdout
    assert f"Description: {expected_description} → edited in the console (NOT_EQUAL)" in r.stdout

    r = drift(deployer, env, "--format", "json")
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1 and doc["stage"] == STAGE
    reports = {s["stack"]: s for s in doc["stacks"]}
    assert reports[f"pdcase-{STAGE}-bootstrap"]["status"] == "IN_SYNC"
    main = reports[f"pdcase-{STAGE}"]
    assert main["status"] == "DRIFTED"
    assert [d["logical_id"] for d in main["drifted"]] == ["EtlFunction", "EtlRole"]
    memory = next(p for p in main["drifted"][0]["differences"] if p["path"].endswith("MemorySize"))
    assert memory == {"path": memory["path"], "expected": str(expected_memory),
                      "actual": str(expected_memory // 2), "kind": "NOT_EQUAL"}


def test_drift_of_a_stage_not_deployed_is_an_error(deployer, emulator):
    emulator.reset()
    r = drift(deployer, emulator.env(STAGE))
    assert r.returncode == 1
    assert messages(r.stderr)[0] == f"error: stage {STAGE} is not deployed in region us-east-1: nothing to check"
