"""The emulator's own mistakes fixed where they live (scripts/patch_emulator.py), each shown
against the emulator: the behaviour AWS has, which the unpatched MiniStack 1.5.33 lacked.

Relies on: MiniStack with the patches applied by scripts/setup-emulator.
"""
import json

import botocore.exceptions
import pytest

from conftest import run


def padded_template(size: int) -> str:
    """A valid template of at least `size` bytes (a topic and filler metadata)."""
    t = {"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {}}}, "Metadata": {"Filler": ""}}
    t["Metadata"]["Filler"] = "x" * (size - len(json.dumps(t)))
    return json.dumps(t)


def test_template_url_in_the_virtual_hosted_form_is_read(emulator):
    """Patch template-url-virtual-hosted. AWS: a template over 51,200 bytes is refused inline
    and read from S3 by its URL, whose virtual-hosted regional form CloudFormation accepts."""
    emulator.reset()
    s3, cfn = emulator.client("s3"), emulator.client("cloudformation")
    body = padded_template(60_000)
    with pytest.raises(botocore.exceptions.ClientError, match="51200"):
        cfn.create_stack(StackName="patch-inline", TemplateBody=body)
    s3.create_bucket(Bucket="patch-templates")
    s3.put_object(Bucket="patch-templates", Key="t/big.json", Body=body.encode())
    url = "https://patch-templates.s3.us-east-1.amazonaws.com/t/big.json"
    cfn.create_stack(StackName="patch-url", TemplateURL=url)
    assert cfn.describe_stacks(StackName="patch-url")["Stacks"][0]["StackName"] == "patch-url"
    # The path-style form still works as before.
    cfn.validate_template(TemplateURL="https://s3.us-east-1.amazonaws.com/patch-templates/t/big.json")


def test_the_deployer_sends_a_template_over_the_inline_limit_through_s3(deployer, emulator, package, tmp_path):
    """Issue 12i: CloudFormation refuses a TemplateBody over 51,200 bytes; above the limit the
    deployer uploads the template to the artifacts bucket and gives its URL. The limit is
    lowered here so that today's template (about 37 KB) takes that path; the other deploy
    tests take the inline one."""
    emulator.reset()
    stage = "e2etemplateurl"
    binary = package["lambda"]["bootstrap"]
    env = {**emulator.env(stage), "DEPLOYER_INLINE_TEMPLATE_LIMIT": "20000"}
    # The bootstrap stack's template (the role's policies) is over that limit too: a first
    # bootstrap creates the bucket alone, then adds the role through it.
    root = {**emulator.env(), "DEPLOYER_INLINE_TEMPLATE_LIMIT": "20000"}
    r = run([deployer, "bootstrap", "--stage", stage], env=root, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "the artifacts bucket first, then the role through it" in r.stderr, r.stderr
    assert f"template of pdcase-{stage}-bootstrap: " in r.stderr and "over 20000 inline: s3://" in r.stderr
    r = run([deployer, "deploy", "--stage", stage, "--lambda-bootstrap", binary], env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert f"template of pdcase-{stage}: " in r.stderr and "over 20000 inline: s3://" in r.stderr
    cfn, s3 = emulator.client("cloudformation"), emulator.client("s3")
    assert cfn.describe_stacks(StackName=f"pdcase-{stage}")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    bucket = f"pdcase-{stage}-artifacts-000000000000-us-east-1"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="templates/")["Contents"]]
    assert sorted(k.rsplit("/", 1)[0] for k in keys) == [f"templates/pdcase-{stage}", f"templates/pdcase-{stage}-bootstrap"], keys
    # What CloudFormation keeps as the stack's template is what was uploaded: a re-run finds
    # nothing to change.
    r = run([deployer, "deploy", "--stage", stage, "--lambda-bootstrap", binary], env=env, timeout=600)
    assert r.returncode == 0 and "is up to date" in r.stderr, r.stderr
    r = run([deployer, "teardown", "--stage", stage, "--yes"], env=emulator.env(stage), timeout=600)
    assert r.returncode == 0, r.stderr


def test_the_emulator_enforces_iam_and_tls(emulator):
    """What every emulator test relies on: an unknown key is refused, an identity without a
    permission is denied, and plain HTTP gets no answer."""
    import json
    import urllib.request

    bogus = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidAccessKeyId|InvalidClientTokenId"):
        emulator.client("s3", keys=bogus).list_buckets()
    iam = emulator.client("iam")
    iam.create_user(UserName="nobody")
    key = iam.create_access_key(UserName="nobody")["AccessKey"]
    nobody = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        emulator.client("s3", keys=nobody).create_bucket(Bucket="nobody-bucket")
    with pytest.raises(Exception):
        urllib.request.urlopen(emulator.endpoint.replace("https://", "http://") + "/_ministack/health", timeout=5)
    assert json.dumps(emulator.endpoint).startswith('"https://')


def test_log_stream_writes_are_authorized_on_the_stream(emulator):
    """Patch logs-stream-arn. AWS authorizes CreateLogStream and PutLogEvents on
    `log-group:NAME:log-stream:STREAM`, which `log-group:NAME:*` grants and the bare group
    name does not."""
    import json
    import time

    logs, iam = emulator.client("logs"), emulator.client("iam")
    group = "/aws/lambda/patch-logs"
    logs.create_log_group(logGroupName=group)

    def identity(name, resource):
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="logs", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": [
                "logs:CreateLogStream", "logs:PutLogEvents"], "Resource": resource}]}))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return emulator.client("logs", keys={"AWS_ACCESS_KEY_ID": k["AccessKeyId"],
                                             "AWS_SECRET_ACCESS_KEY": k["SecretAccessKey"]})

    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{group}"
    streams = identity("logs-streams", f"{arn}:*")
    streams.create_log_stream(logGroupName=group, logStreamName="s1")
    streams.put_log_events(logGroupName=group, logStreamName="s1",
                           logEvents=[{"timestamp": int(time.time() * 1000), "message": "hello"}])
    group_only = identity("logs-group-only", arn)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        group_only.create_log_stream(logGroupName=group, logStreamName="s2")


def test_describe_alarms_answers_an_alarms_dimensions_and_actions(emulator):
    """Patch cloudwatch-describe-alarms-query. AWS: DescribeAlarms over the Query protocol
    (boto3's) answers each metric alarm's Statistic, Period, Dimensions and AlarmActions."""
    emulator.reset()
    cw = emulator.client("cloudwatch")
    cw.put_metric_alarm(AlarmName="patch-alarm", Namespace="AWS/Lambda", MetricName="Errors",
                        Dimensions=[{"Name": "FunctionName", "Value": "f<1>"}], Statistic="Sum", Period=300,
                        EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                        AlarmActions=["arn:aws:sns:us-east-1:000000000000:alerts"])
    alarm = cw.describe_alarms(AlarmNames=["patch-alarm"])["MetricAlarms"][0]
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": "f<1>"}]
    assert alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:000000000000:alerts"]
    assert (alarm["Statistic"], alarm["Period"]) == ("Sum", 300)
