"""Issue 27, parts 4 and 5: `deployer ls` lists the stages deployed in the account and region, from
their stacks' tags, as an identity that may list every stack; a stage's deploy identity, which
may read only its own stacks, is told which identity to use. `--profile` picks the identity
from a profile. Relies on: MiniStack with IAM
enforced (DescribeStacks without a name, checked against each identity's policies)."""
import json

from conftest import ROOT, run
from test_deploy import deployer_cmd

STAGE = "e2els"


def test_ls_lists_deployed_stages_for_an_identity_that_may_list_stacks(deployer, emulator, package, tmp_path):
    emulator.reset()
    r = deployer_cmd(deployer, emulator, "deploy", "--stage", STAGE, "--lambda-bootstrap",
                     package["lambda"]["bootstrap"])
    assert r.returncode == 0, r.stderr
    lister = emulator.user("stack-lister", [("list-stacks", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "cloudformation:DescribeStacks", "Resource": "*"}]})])
    env = {**emulator.env(), **lister}
    r = run([deployer, "ls", "--region", "us-east-1", "--format", "json"], env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1 and doc["region"] == "us-east-1"
    stages = {s["stage"]: s for s in doc["stages"]}
    assert sorted(x["name"] for x in stages[STAGE]["stacks"]) == [f"pdcase-{STAGE}", f"pdcase-{STAGE}-bootstrap"]
    r = run([deployer, "ls", "--region", "us-east-1"], env=env, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith(f"{STAGE}\t"), r.stdout

    # --profile: the same identity from a profile of a credentials file, no keys in the
    # environment.
    creds = tmp_path / "credentials"
    creds.write_text(f"[lister]\naws_access_key_id = {lister['AWS_ACCESS_KEY_ID']}\n"
                     f"aws_secret_access_key = {lister['AWS_SECRET_ACCESS_KEY']}\n")
    bare = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS") and not k.startswith("AWS_SECRET")
            and k != "AWS_PROFILE"}
    bare.update(AWS_SHARED_CREDENTIALS_FILE=str(creds), AWS_CONFIG_FILE=str(tmp_path / "none"))
    r = run([deployer, "--profile", "lister", "ls", "--region", "us-east-1"], env=bare, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith(f"{STAGE}\t"), r.stderr
    r = run([deployer, "--profile", "nobody", "ls", "--region", "us-east-1"], env=bare, cwd=ROOT)
    assert r.returncode == 1, r.stdout

    # The stage's own deploy identity may not list every stack: told whom to run it as.
    r = run([deployer, "ls", "--region", "us-east-1"], env=emulator.env(STAGE), cwd=ROOT)
    assert r.returncode == 1
    assert "cloudformation:DescribeStacks on every stack" in r.stderr, r.stderr
