"""`deployer synth` as a user runs it: refusals, config errors, output files, determinism.

Relies on: nothing but the binary (no AWS, no emulator).
"""

import json

import pytest
import yaml

from conftest import MAX_STAGE, run


@pytest.mark.parametrize(
    "stage, rule",
    [
        ("Alice", "uppercase letter `A` at position 1: only lowercase letters, digits and hyphens are allowed"),
        ("al.ice", "dots are not allowed (bucket names with dots break virtual-hosted HTTPS)"),
        ("al_ice", "underscores are not allowed (S3 bucket names forbid them)"),
        ("", "stage name is empty"),
        (MAX_STAGE + "x", "is 18 characters long: at most 17 are allowed"),
        ("9lives", "must start with a lowercase letter"),
    ],
)
def test_bad_stage_names_are_refused_with_the_rule(deployer, tmp_path, stage, rule):
    out = tmp_path / "t.yaml"
    r = run([deployer, "synth", "--stage", stage, "--out", out], cwd=tmp_path)
    assert r.returncode == 1
    assert rule in r.stderr, r.stderr
    assert r.stdout == "" and not out.exists()


def test_bad_config_names_file_key_and_problem(deployer, tmp_path):
    cfg = tmp_path / "stages.yaml"
    cfg.write_text("stages:\n  alice:\n    lambda:\n      timeout_seconds: 901\n")
    r = run([deployer, "--config", cfg, "synth", "--stage", "alice"])
    assert r.returncode == 1
    assert f"{cfg}: `stages.alice.lambda.timeout_seconds`: 901 is out of range: 1 to 900 seconds of Lambda timeout" in r.stderr


def test_pipeline_yaml_in_the_working_directory_is_read(deployer, tmp_path):
    (tmp_path / "pipeline.yaml").write_text("stages:\n  alice:\n    lambda: {memory_mb: 512}\n")
    r = run([deployer, "synth", "--stage", "alice", "--format", "json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Resources"]["EtlFunction"]["Properties"]["MemorySize"] == 512


def test_failed_write_keeps_the_existing_file(deployer, tmp_path, config_file):
    out = tmp_path / "t.yaml"
    out.write_text("previous\n")
    r = run([deployer, "--config", tmp_path / "missing.yaml", "synth", "--stage", "alice", "--out", out])
    assert r.returncode == 1 and "missing.yaml: cannot read the file" in r.stderr
    assert out.read_text() == "previous\n"


def test_output_is_byte_identical_across_runs_and_yaml_equals_json(deployer, config_file, rendered):
    for stage in ("alice", "prod"):
        again = run([deployer, "--config", config_file, "synth", "--stage", stage])
        assert again.returncode == 0
        assert again.stdout == rendered[(stage, "yaml")].read_text()
        # PyYAML reads YAML 1.1 (where unquoted 2012-10-17 would be a date, `on` a boolean).
        as_yaml = yaml.safe_load(again.stdout)
        assert as_yaml == json.loads(rendered[(stage, "json")].read_text())


def test_stages_differ_only_where_they_should(rendered):
    alice = json.loads(rendered[("alice", "json")].read_text())
    prod = json.loads(rendered[("prod", "json")].read_text())
    assert alice.keys() == prod.keys()
    # The protected stage is hardened: its own KMS key (and alias); and its base b runs on EMR
    # (the starter, the EMR Serverless application and its job role) where alice's runs in its
    # function.
    emr_parts = {k for k in prod["Resources"] if k.startswith("Emr") and k != "EmrTriggerTopic"}
    assert {"EmrStarterFunction", "EmrApplication", "EmrJobRole"} <= emr_parts
    assert not emr_parts & {"EmrServiceRole", "EmrInstanceProfile", "EmrSubnet", "EmrVpc"}
    site_events = {k for k in alice["Resources"] if k.startswith("SiteEvents")}
    assert site_events == {"SiteEventsFunction", "SiteEventsRole", "SiteEventsLogGroup", "SiteEventsSnsPermission",
                           "SiteEventsSubscription", "SiteEventsInvokeConfig"}
    # And its base a may run as shards (`base_a_engine: auto`): the state machine, its role and
    # log group.
    shards = {"EtlShardsStateMachine", "EtlShardsRole", "EtlShardsLogGroup"}
    assert prod["Resources"]["EtlShardsLogGroup"]["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["StageKey", "Arn"]}
    assert prod["Resources"].keys() - alice["Resources"].keys() == {"StageKey", "StageKeyAlias"} | emr_parts | shards
    assert alice["Resources"].keys() - prod["Resources"].keys() == site_events
    key_arn = {"Fn::GetAtt": ["StageKey", "Arn"]}
    assert prod["Resources"]["EtlLogGroup"]["Properties"]["KmsKeyId"] == key_arn
    assert prod["Resources"]["EtlTriggerTopic"]["Properties"]["KmsMasterKeyId"] == key_arn
    sse = prod["Resources"]["WarehouseBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    assert "KmsKeyId" not in alice["Resources"]["EtlLogGroup"]["Properties"]
    assert prod["Resources"]["WarehouseBucket"]["DeletionPolicy"] == "RetainExceptOnCreate"
    assert alice["Resources"]["WarehouseBucket"]["DeletionPolicy"] == "Delete"
    assert prod["Resources"]["EtlFunction"]["Properties"]["Timeout"] == 300
    assert prod["Resources"]["EtlLogGroup"]["Properties"]["RetentionInDays"] == 365
    assert "pdcase-prod-" in json.dumps(prod) and "pdcase-alice-" not in json.dumps(prod)
