"""`resources:` and `overrides:` in pipeline.yaml, refused at synth (issue 28, part 1): one case
per refusal, each naming the file, the line and column, the key and what is wrong; and what a
valid extension renders.

Relies on: the binary alone (no AWS, no emulator): the schema digest embedded in it (cfn-lint's
resource schemas, pinned).
"""
import gzip
import json

import pytest

from conftest import ROOT, run

TABLE = """\
        T:
          Type: AWS::DynamoDB::Table
          Properties:
            BillingMode: PAY_PER_REQUEST
            AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
            KeySchema: [{AttributeName: id, KeyType: HASH}]
"""


def config(resources: str = "", overrides: str = "", region: str = "") -> str:
    text = "stages:\n  alice:\n"
    if region:
        text += f"    region: {region}\n"
    if resources:
        text += "    resources:\n      Resources:\n" + resources
    if overrides:
        text += "    overrides:\n" + overrides
    return text


def absent_type_and_region() -> tuple[str, str]:
    """A type the digest says one region's CloudFormation lacks, and that region."""
    digest = json.loads(gzip.decompress((ROOT / "crates/deployer/data/resource_schemas.json.gz").read_bytes()))
    for name, t in sorted(digest["types"].items()):
        if t["absent_in"] and not t["required"] and name.startswith("AWS::"):
            return name, t["absent_in"][0]
    raise AssertionError("no type is absent from any region")


CASES = [
    # (id, config text, key, line, message)
    ("unknown type", config(TABLE.replace("AWS::DynamoDB::Table", "AWS::DynamoDB::Tabel")),
     "stages.alice.resources.Resources.T.Type", 6,
     "`AWS::DynamoDB::Tabel` is not a resource type the resource schemas define; did you mean `AWS::DynamoDB::Table`?"),
    ("unknown property", config(TABLE.replace("BillingMode", "BillingMod")),
     "stages.alice.resources.Resources.T.Properties.BillingMod", 8,
     "AWS::DynamoDB::Table has no property `BillingMod`; did you mean `BillingMode`?"),
    ("read-only property", config(TABLE + "            Arn: x\n"),
     "stages.alice.resources.Resources.T.Properties.Arn", 11,
     "`Arn` of AWS::DynamoDB::Table is read-only: AWS sets it"),
    ("required property missing", config(TABLE.replace("            KeySchema: [{AttributeName: id, KeyType: HASH}]\n", "")),
     "stages.alice.resources.Resources.T.Properties", 7,
     "AWS::DynamoDB::Table requires the property `KeySchema`"),
    ("clash with a pipeline id", config(TABLE.replace("        T:", "        EtlFunction:")),
     "stages.alice.resources.Resources.EtlFunction", 5,
     "`EtlFunction` is a logical id of the pipeline (AWS::Lambda::Function)"),
    ("reference to nothing", config(TABLE + "            TableName: !Ref NoSuchThing\n"),
     "stages.alice.resources.Resources.T.Properties.TableName", 11,
     "`T` refers to `NoSuchThing`, which is not a resource or parameter of this template"),
    ("attribute a type lacks", config(TABLE + "            TableName: !GetAtt EtlFunction.StreamArn\n"),
     "stages.alice.resources.Resources.T.Properties.TableName", 11,
     "reads attribute `StreamArn` of `EtlFunction` (AWS::Lambda::Function), which has no such attribute"),
    ("unknown ${} in a Fn::Sub", config(TABLE + "            TableName: !Sub '${Missing}-x'\n"),
     "stages.alice.resources.Resources.T.Properties.TableName", 11,
     "uses `${Missing}` in a Fn::Sub text"),
    ("unknown short form", config(TABLE + "            TableName: !Reff EtlFunction\n"),
     "stages.alice.resources", 3,
     "`!Reff` is not a CloudFormation function's short form"),
    ("a condition", config(TABLE + "          Condition: IsProd\n"),
     "stages.alice.resources.Resources.T.Condition", 11,
     "a stage's template has no `Conditions`"),
    ("a tag the tool sets", config(TABLE + "            Tags: [{Key: Stage, Value: x}]\n"),
     "stages.alice.resources.Resources.T.Properties.Tags.0.Key", 11,
     "`Stage` is set by the tool"),
    ("an invalid logical id", config(TABLE.replace("        T:", "        my-table:")),
     "stages.alice.resources.Resources.my-table", 5,
     "a logical id is 1 to 255 ASCII letters and digits"),
    ("an output without a value", config(TABLE) + "      Outputs:\n        Out: {Description: x}\n",
     "stages.alice.resources.Outputs.Out", 12,
     "the output has no `Value`"),
    ("an output that clashes", config(TABLE) + "      Outputs:\n        SourceBucketName: {Value: x}\n",
     "stages.alice.resources.Outputs.SourceBucketName", 12,
     "`SourceBucketName` is an output of the pipeline"),
    ("a section the stage does not take", "stages:\n  alice:\n    resources:\n      Conditions: {IsProd: !Equals [a, b]}\n",
     "stages.alice.resources.Conditions", 4,
     "takes added `Resources` and `Outputs` only"),
    ("override of a resource the pipeline lacks", config(overrides="      NoSuch: {Description: x}\n"),
     "stages.alice.overrides.NoSuch.Description", 4,
     "`NoSuch` is not a resource of the pipeline"),
    ("override of an added resource", config(TABLE, overrides="      T: {BillingMode: PROVISIONED}\n"),
     "stages.alice.overrides.T.BillingMode", 12,
     "it is one of the stage's added resources: change it under `resources:`"),
    ("override of a property the type lacks", config(overrides="      EtlFunction: {MemorySze: 1024}\n"),
     "stages.alice.overrides.EtlFunction.MemorySze", 4,
     "AWS::Lambda::Function has no property `MemorySze`; did you mean `MemorySize`?"),
    ("override through a value that is not a mapping", config(overrides="      EtlFunction: {Handler.Deep: x}\n"),
     "stages.alice.overrides.EtlFunction.Handler.Deep", 4,
     "cannot apply: `Deep` is below a value that is not a mapping or list"),
]


@pytest.mark.parametrize("text, key, line, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_refusal_names_file_line_key_and_problem(deployer, tmp_path, text, key, line, message):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(text)
    r = run([deployer, "--config", cfg, "synth", "--stage", "alice"])
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    assert f"{cfg}:{line}:" in r.stderr, r.stderr
    assert f"`{key}`" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr
    # Every verb reads the file the same way: validate refuses it too, before any AWS call.
    v = run([deployer, "--config", cfg, "validate"])
    assert v.returncode == 1 and message in v.stderr, v.stderr


def test_a_type_the_stages_region_lacks_is_refused(deployer, tmp_path):
    ty, region = absent_type_and_region()
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(config(f"        X:\n          Type: {ty}\n", region=region))
    r = run([deployer, "--config", cfg, "synth", "--stage", "alice"])
    assert r.returncode == 1
    assert f"CloudFormation does not offer `{ty}` in {region}" in r.stderr, r.stderr


def test_a_valid_extension_renders_with_tags_outputs_and_overrides(deployer, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text("defaults:\n  tags: {team: data}\n" + config(
        TABLE + "      Outputs:\n        TableName: {Value: !Ref T}\n",
        overrides="      EtlFunction:\n        Description: changed\n        TracingConfig.Mode: Active\n"
                  "      EtlLogGroup: {RetentionInDays: 60}\n"))
    r = run([deployer, "--config", cfg, "synth", "--stage", "alice", "--format", "json"])
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)
    tags = t["Resources"]["T"]["Properties"]["Tags"]
    assert tags == [{"Key": "Project", "Value": "pdcase"}, {"Key": "Stage", "Value": "alice"},
                    {"Key": "team", "Value": "data"}]
    assert t["Outputs"]["TableName"] == {"Value": {"Ref": "T"}}
    etl = t["Resources"]["EtlFunction"]["Properties"]
    assert etl["Description"] == "changed" and etl["TracingConfig"] == {"Mode": "Active"}
    assert t["Resources"]["EtlLogGroup"]["Properties"]["RetentionInDays"] == 60
    assert "note: AWS::DynamoDB::Table: no recorded permission decisions" in r.stderr


def test_an_override_with_null_removes_the_property(deployer, tmp_path):
    cfg = tmp_path / "pipeline.yaml"
    cfg.write_text(config(overrides="      EtlFunction: {Description: null}\n"))
    r = run([deployer, "--config", cfg, "synth", "--stage", "alice", "--format", "json"])
    assert r.returncode == 0, r.stderr
    assert "Description" not in json.loads(r.stdout)["Resources"]["EtlFunction"]["Properties"]
