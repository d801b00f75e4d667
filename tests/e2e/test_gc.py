"""Issue 14, part 4: `deployer gc --stage S` lists the artifacts no stack refers to and deletes
them only with `--yes`; what any stack's parameters name stays, whoever made the stack.

Relies on: MiniStack's CloudFormation (DescribeStacks lists every stack with its parameters)
and S3, with IAM enforced (the deploy identity may not read other stacks, so gc refuses).
"""
import json

from conftest import messages, ROOT, run

STAGE = "e2egc"


def gc(deployer, env, *extra):
    return run([deployer, "gc", "--stage", STAGE, *extra], env=env, cwd=ROOT, timeout=300)


def test_gc_deletes_only_unreferenced_artifacts_and_only_when_told(deployer, emulator, package):
    emulator.reset()
    r = run([deployer, "deploy", "--stage", STAGE, "--lambda-bootstrap", package["lambda"]["bootstrap"]],
            env=emulator.env(STAGE), cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    s3, cfn = emulator.client("s3"), emulator.client("cloudformation")
    bucket = f"pdcase-{STAGE}-artifacts-000000000000-us-east-1"
    deployed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert any(k.startswith("lambda/") for k in deployed) and any(k.startswith("spark/") for k in deployed)
    # An artifact nothing uses any more, and one a stack of another tool names by URI.
    s3.put_object(Bucket=bucket, Key="lambda/orphan.zip", Body=b"old build")
    s3.put_object(Bucket=bucket, Key="lambda/foreign.zip", Body=b"someone's build")
    template = {"Parameters": {"Code": {"Type": "String"}},
                "Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {}}}}
    cfn.create_stack(StackName="another-tool", TemplateBody=json.dumps(template),
                     Parameters=[{"ParameterKey": "Code", "ParameterValue": f"s3://{bucket}/lambda/foreign.zip"}])

    # The stage's deploy identity may read only its own stacks: gc refuses, deleting nothing.
    r = gc(deployer, emulator.env(STAGE), "--older-than-days", "0", "--yes")
    assert r.returncode == 1
    first = messages(r.stderr)[0]
    assert first.startswith("error: reading every stack's parameters: access denied: ") and first.endswith(
        "; nothing was deleted"), first
    assert "lambda/orphan.zip" in {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}

    root = emulator.env()
    # Within the grace period (7 days by default) nothing is listed for deletion.
    r = gc(deployer, root)
    assert r.returncode == 0, r.stderr
    assert ", 0 unreferenced" in r.stdout.splitlines()[0], r.stdout

    r = gc(deployer, root, "--older-than-days", "0")
    assert r.returncode == 0, r.stderr
    assert f"s3://{bucket}: {len(deployed) + 1} referenced by a stack or a hotswap record (kept), 0 younger than 0 days (kept), 1 unreferenced" \
        == r.stdout.splitlines()[0], r.stdout
    assert "  unreferenced lambda/orphan.zip (9 bytes, 0 days old)" in r.stdout
    assert "run again with --yes" in r.stdout
    assert "lambda/orphan.zip" in {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}

    r = gc(deployer, root, "--older-than-days", "0", "--yes")
    assert r.returncode == 0, r.stderr
    assert "deleted 1 artifacts, 9 bytes" in r.stdout
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]} == deployed | {"lambda/foreign.zip"}
