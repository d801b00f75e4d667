"""Issue 14, part 6: errors a person can act on. Each case asserts the one line of cause and
the line of what to do, and that the SDK's detail shows only with `--verbose`.

Relies on: the `deployer` binary; the local emulator (MiniStack, IAM enforced) for access
denied and a stage that is not deployed; nothing at all for missing credentials and a refused
endpoint. Expired credentials, which the emulator never reports, are tested with
aws-smithy-mocks in crates/deployer/src/aws.rs.
"""
import os
import socket

from conftest import messages, run


def bare_env(tmp_path, **extra) -> dict:
    """No AWS settings at all: no keys, no profile files, no instance metadata."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none")})
    env.update(extra)
    return env


def lines(stderr: str) -> list[str]:
    return [line for line in messages(stderr) if line.strip()]


def test_no_credentials_names_the_chain_and_how_to_point_at_the_emulator(deployer, tmp_path):
    r = run([deployer, "trigger", "etl", "--stage", "alice"], env=bare_env(tmp_path))
    assert r.returncode == 1
    out = lines(r.stderr)
    assert out[0] == ("error: describing stack pdcase-alice: no AWS credentials found (looked in the environment, "
                      "the shared config and credentials files with their profiles and SSO sessions, and instance "
                      "or container roles)"), out
    assert out[1].startswith("  to do: set AWS_PROFILE") and "AWS_ENDPOINT_URL" in out[1], out
    assert "DispatchFailure" not in r.stderr


def test_a_refused_endpoint_names_it_and_the_detail_waits_for_verbose(deployer, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    env = bare_env(tmp_path, AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b", AWS_ENDPOINT_URL=f"https://127.0.0.1:{port}")
    r = run([deployer, "trigger", "etl", "--stage", "alice"], env=env)
    out = lines(r.stderr)
    assert r.returncode == 1
    assert out[0] == f"error: describing stack pdcase-alice: cannot reach https://127.0.0.1:{port} (AWS_ENDPOINT_URL): nothing answers there", out
    assert out[1].startswith("  to do: start the local emulator"), out
    assert "Connection refused" not in r.stderr and "--verbose" in r.stderr
    r = run([deployer, "--verbose", "trigger", "etl", "--stage", "alice"], env=env)
    assert "  detail: " in r.stderr and "Connection refused" in r.stderr


def test_access_denied_repeats_what_aws_named(deployer, emulator):
    """The emulator enforces IAM: stage alice's deploy identity may not read stage bob's stack."""
    emulator.reset()
    r = run([deployer, "trigger", "etl", "--stage", "bob"], env=emulator.env("alice"))
    out = lines(r.stderr)
    assert r.returncode == 1
    assert out[0].startswith("error: describing stack pdcase-bob: access denied: "), out
    assert "cloudformation:DescribeStacks" in out[0], out
    assert out[1].startswith("  to do: grant this identity that action on that resource"), out


def test_a_stage_not_deployed_in_its_region_says_where_it_looked(deployer, emulator):
    emulator.reset()
    r = run([deployer, "trigger", "etl", "--stage", "alice"], env=emulator.env("alice"))
    out = lines(r.stderr)
    assert r.returncode == 1
    assert out[0] == "error: stage alice is not deployed in region us-east-1 (no stack pdcase-alice)", out
    assert out[1] == ("  to do: deploy it with `deployer deploy --stage alice`, or, if it lives in another region, "
                      "set `stages.alice.region` in pipeline.yaml"), out
