"""Issue 26, part 6: a configuration that cannot be missed.

Relies on: the `deployer` binary alone (finding the file, checking every stage, the warning),
and the local emulator (MiniStack, IAM enforced) for the deploy from a subfolder and the two
refusals: a deploy that would remove the stage's KMS key, and one that lowers its guard. The
emulator records the key; that its deletion makes data unreadable is AWS's documented
behaviour ("Deleting AWS KMS keys"), not something run here.
"""
import json

from conftest import messages, run

STAGE = "e2econfig"


def workspace(tmp_path, config: str):
    """A Cargo workspace with `config` as its pipeline.yaml, and a member folder two levels down."""
    root = tmp_path / "ws"
    sub = root / "crates" / "etl"
    sub.mkdir(parents=True)
    (root / "Cargo.toml").write_text('[workspace]\nmembers = ["crates/etl"]\n')
    (root / "pipeline.yaml").write_text(config)
    return root, sub


def test_synth_from_a_subfolder_reads_the_workspace_file(deployer, tmp_path):
    root, sub = workspace(tmp_path, "stages:\n  prod:\n    protected: true\n")
    r = run([deployer, "synth", "--stage", "prod", "--format", "json"], cwd=sub)
    assert r.returncode == 0, r.stderr
    assert f"config: {root / 'pipeline.yaml'}" in r.stderr.splitlines(), r.stderr
    resources = json.loads(r.stdout)["Resources"].values()
    retained = [x for x in resources if x.get("DeletionPolicy", "").startswith("Retain")]
    assert len(retained) >= 9, len(retained)

    # Without the file, the same command says it used the defaults, and renders nothing retained.
    (root / "pipeline.yaml").unlink()
    r = run([deployer, "synth", "--stage", "prod", "--format", "json"], cwd=sub)
    assert r.returncode == 0, r.stderr
    assert messages(r.stderr) == [] and "using the built-in defaults" in r.stderr, r.stderr
    assert not [x for x in json.loads(r.stdout)["Resources"].values() if "DeletionPolicy" in x
                and x["DeletionPolicy"].startswith("Retain")]


def test_an_invalid_stage_anywhere_in_the_file_fails_every_verb(deployer, tmp_path):
    root, sub = workspace(tmp_path, "stages:\n  alice: {}\n  bob:\n    lambda: { memory_mb: 1 }\n")
    verbs = [["validate"], ["synth", "--stage", "alice"], ["policy", "--stage", "alice"],
             ["diff", "--stage", "alice"], ["info", "--stage", "alice"], ["trigger", "etl", "--stage", "alice"],
             ["deploy", "--stage", "alice"], ["teardown", "--stage", "alice", "--yes"]]
    for verb in verbs:
        r = run([deployer, *verb], cwd=sub, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert r.returncode == 1, (verb, r.stderr)
        first = messages(r.stderr)[0]
        assert first.startswith(f"error: invalid configuration: {root / 'pipeline.yaml'}: `stages.bob.lambda.memory_mb`"), (verb, first)
    (root / "pipeline.yaml").write_text("stages:\n  alice: {}\n  bob: {}\n")
    r = run([deployer, "validate"], cwd=sub)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{root / 'pipeline.yaml'}: valid; stages: alice, bob (any other stage gets its defaults)"


def test_a_stage_the_file_does_not_name_is_warned_of(deployer, tmp_path):
    _, sub = workspace(tmp_path, "stages:\n  alice: {}\n  prod: { protected: true }\n")
    r = run([deployer, "synth", "--stage", "prd"], cwd=sub)
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("warning: stage prd is not named in ") and l.endswith("which names alice, prod: it gets the file's defaults")
               for l in r.stderr.splitlines()), r.stderr
    r = run([deployer, "synth", "--stage", "prod"], cwd=sub)
    assert "warning" not in r.stderr, r.stderr


def test_a_deploy_that_removes_the_key_or_lowers_the_guard_is_refused(deployer, emulator, package, tmp_path):
    emulator.reset()
    cfn = emulator.client("cloudformation")
    _, sub = workspace(tmp_path, f"stages:\n  {STAGE}:\n    hardened: true\n")
    binary = package["lambda"]["bootstrap"]
    deploy = [deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary]
    env = emulator.env(STAGE)
    # From the member folder, the workspace's file: the stage is hardened (its KMS key).
    r = run(deploy, cwd=sub, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    ids = {s["LogicalResourceId"] for s in cfn.list_stack_resources(StackName=f"pdcase-{STAGE}")["StackResourceSummaries"]}
    assert "StageKey" in ids
    updated = cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0].get("LastUpdatedTime")

    # The file loses `hardened` (as a deploy from a folder that misses it would): refused.
    (sub.parent.parent / "pipeline.yaml").write_text(f"stages:\n  {STAGE}: {{}}\n")
    r = run(deploy, cwd=sub, env=env, timeout=600)
    assert r.returncode == 5, r.stderr
    error = next(l for l in r.stderr.splitlines() if l.startswith("error: "))
    assert "lower stage e2econfig's guard (hardened -> not hardened" in error and "--allow-lower-guard" in error, error
    assert "log retention 365 -> 30 days" in error, error
    # Accepting the lower guard still refuses the key's removal, as data at risk.
    r = run(deploy + ["--allow-lower-guard"], cwd=sub, env=env, timeout=600)
    assert r.returncode == 5, r.stderr
    error = next(l for l in r.stderr.splitlines() if l.startswith("error: "))
    assert "StageKey" in error and "--allow-replace StageKey" in error, error
    # Neither touched the stack.
    stack = cfn.describe_stacks(StackName=f"pdcase-{STAGE}")["Stacks"][0]
    assert stack.get("LastUpdatedTime") == updated and stack["StackStatus"].endswith("COMPLETE"), stack

    # `diff` says both.
    r = run([deployer, "diff", "--stage", STAGE, "--lambda-bootstrap", binary], cwd=sub, env=env)
    assert r.returncode == 2, r.stderr
    assert "! guard lowered: hardened -> not hardened" in r.stdout and "StageKey" in r.stdout, r.stdout

    # The file made right again (the refused deploys' bootstraps, run as the root before each,
    # rendered the role for the lowered file: the hardened stage's teardown needs its own).
    (sub.parent.parent / "pipeline.yaml").write_text(f"stages:\n  {STAGE}:\n    hardened: true\n")
    r = run([deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", binary], cwd=sub, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    r = run([deployer, "teardown", "--stage", STAGE, "--yes"], cwd=sub, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
