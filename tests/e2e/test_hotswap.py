"""Issue 14, part 1: `deployer deploy --hotswap` puts a code-only change straight into the
stage's functions (no change set), `diff` then says the stack's view is out of date, and the
next full deploy brings CloudFormation back in line. A template change falls back to a full
deploy, saying why; a protected stage refuses --hotswap.

Relies on: MiniStack (CloudFormation, Lambda run as host processes, S3) with IAM enforced for
the deploy identity. The changed code is the released bootstrap with bytes appended: another
zip and CodeSha256, the same behaviour, which the invocation after the swap shows answering.
"""
import json
import os

from conftest import ROOT, run

STAGE = "e2ehot"


def cli(deployer, emulator, *args, config=None):
    cmd = [deployer] + (["--config", config] if config else []) + list(args)
    return run(cmd, env=emulator.env(STAGE), cwd=ROOT, timeout=600)


def test_a_code_change_is_hotswapped_then_a_full_deploy_brings_the_stack_in_line(deployer, emulator, package, tmp_path):
    emulator.reset()
    original = package["lambda"]["bootstrap"]
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stderr
    changed = tmp_path / "bootstrap"
    changed.write_bytes(open(original, "rb").read() + b"\0a code change for the hotswap test\0")
    os.chmod(changed, 0o755)

    lam, cfn = emulator.client("lambda"), emulator.client("cloudformation")
    function = f"pdcase-{STAGE}-table-refresher"
    before = lam.get_function_configuration(FunctionName=function)["CodeSha256"]
    events_before = len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"])
    params_before = cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]["Parameters"]

    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap")
    assert r.returncode == 0, r.stderr
    assert "hotswapped without a change set" in r.stderr, r.stderr
    after = lam.get_function_configuration(FunctionName=function)["CodeSha256"]
    assert after != before
    # No change set ran: the stack has no new events and still names the previous artifacts.
    assert len(cfn.describe_stack_events(StackName=f"pdcase-{STAGE}")["StackEvents"]) == events_before
    assert cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]["Parameters"] == params_before
    # The new code answers: an object that is not a marker, as EventBridge would send it.
    out = lam.invoke(FunctionName=function, Payload=json.dumps({"detail": {"object": {"key": "a/x.json"}}}))
    assert json.loads(out["Payload"].read()) == [{"outcome": "not_a_marker", "key": "a/x.json"}]

    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the stack's view is out of date: `deploy --hotswap` put lambda/" in r.stdout, r.stdout

    # A second hotswap of the same code has nothing to do.
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap")
    assert r.returncode == 0 and "the functions run these artifacts (nothing hotswapped)" in r.stderr, r.stderr

    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 0, r.stderr
    assert "in line with what runs again" in r.stderr, r.stderr
    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", changed)
    assert r.returncode == 0, r.stdout + r.stderr
    assert lam.get_function_configuration(FunctionName=function)["CodeSha256"] == after

    # A template change: --hotswap says why and deploys in full.
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    lambda: {{memory_mb: 1024}}\n")
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap", config=config)
    assert r.returncode == 0, r.stderr
    assert "--hotswap: the template changes " in r.stderr and "EtlFunction" in r.stderr and ": a full deploy" in r.stderr
    assert lam.get_function_configuration(FunctionName=f"pdcase-{STAGE}-etl")["MemorySize"] == 1024


def test_hotswap_back_to_the_stacks_code_needs_no_record(deployer, emulator, package, tmp_path):
    """Hotswap a change, then hotswap the stack's own artifacts back: the functions run what the
    stack names again, and `diff` finds nothing."""
    emulator.reset()
    original = package["lambda"]["bootstrap"]
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stderr
    changed = tmp_path / "bootstrap"
    changed.write_bytes(open(original, "rb").read() + b"\0another change\0")
    os.chmod(changed, 0o755)
    assert cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", changed, "--hotswap").returncode == 0
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", original, "--hotswap")
    assert r.returncode == 0, r.stderr
    r = cli(deployer, emulator, "diff", "--stage", STAGE, "--lambda-bootstrap", original)
    assert r.returncode == 0, r.stdout


def test_a_protected_stage_refuses_hotswap_before_touching_anything(deployer, emulator, package, tmp_path):
    emulator.reset()
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"stages:\n  {STAGE}:\n    protected: true\n")
    r = cli(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"],
            "--hotswap", config=config)
    assert r.returncode == 5
    assert r.stderr.splitlines()[-1].startswith(f"error: --hotswap is refused on protected stage {STAGE}"), r.stderr
    # Only the bootstrap stack, which the administrator made before (conftest.run): the refused
    # deploy created nothing.
    stacks = [s["StackName"] for s in emulator.client("cloudformation").list_stacks()["StackSummaries"]]
    assert stacks == [f"pdcase-{STAGE}-bootstrap"], stacks
