"""Issue 27, part 4: `deployer config schema` is a JSON Schema that accepts the README's
example `pipeline.yaml` and what `config init` writes, and rejects a mistyped key; `config
init` writes a file `validate` accepts, with the schema beside it; `completion` prints a script
for each shell. Relies on the `deployer` binary, jsonschema and PyYAML (the test virtualenv)."""
import json
import re

import jsonschema
import pytest
import yaml

from conftest import ROOT, run


@pytest.fixture(scope="module")
def schema(deployer):
    r = run([deployer, "config", "schema"])
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(s)
    return s


def readme_example() -> dict:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Per-stage settings", 1)[1]
    return yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))


def errors(schema, doc) -> list[str]:
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(doc)]


def test_the_schema_accepts_the_readme_example_and_rejects_a_mistyped_key(schema):
    example = readme_example()
    assert example["stages"], "the README's example names stages"
    assert errors(schema, example) == []
    bad = json.loads(json.dumps(example))
    bad["stages"]["prod"]["lamda"] = {"memory_mb": 512}
    assert any("lamda" in m for m in errors(schema, bad)), errors(schema, bad)
    assert errors(schema, {"stages": {"x": {"lambda": {"memory_mb": 64}}}}), "memory below Lambda's minimum"
    assert errors(schema, {"defaults": {"table_format": "csv"}})
    assert errors(schema, {"defaults": {"log_retention_days": 10}})


def test_config_init_writes_a_file_validate_accepts_with_its_schema(deployer, schema, tmp_path):
    r = run([deployer, "config", "init", "--dir", tmp_path])
    assert r.returncode == 0, r.stderr
    written = (tmp_path / "pipeline.yaml").read_text()
    assert written.splitlines()[0] == "# yaml-language-server: $schema=./pipeline.schema.json"
    assert json.loads((tmp_path / "pipeline.schema.json").read_text()) == schema
    assert errors(schema, yaml.safe_load(written)) == []
    r = run([deployer, "validate", "--format", "json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["stages"] == ["prod"]
    # Never over a file that is there.
    (tmp_path / "pipeline.yaml").write_text("stages: {}\n")
    r = run([deployer, "config", "init", "--dir", tmp_path])
    assert r.returncode == 1 and "--force" in r.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == "stages: {}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_scripts_for_each_shell(deployer, shell):
    r = run([deployer, "completion", shell])
    assert r.returncode == 0, r.stderr
    assert "deployer" in r.stdout and "teardown" in r.stdout and "require-approval" in r.stdout
    assert run([deployer, "completion", "tcsh"]).returncode == 64


def test_region_on_the_command_line_where_the_file_names_none(deployer, tmp_path):
    """Issue 27, part 5: `--region` sets a stage's region unless the file sets one; a
    different one is refused naming the key (a region is part of the stage's names)."""
    config = tmp_path / "pipeline.yaml"
    config.write_text("stages:\n  prod: {region: us-east-2}\n  alice: {}\n")
    r = run([deployer, "--config", config, "--region", "eu-west-1", "policy", "--stage", "alice", "--account", "123456789012"])
    assert r.returncode == 0, r.stderr
    assert "eu-west-1" in r.stdout and "us-east-1" not in r.stdout
    r = run([deployer, "--config", config, "--region", "eu-west-1", "policy", "--stage", "prod"])
    assert r.returncode == 1 and "`stages.prod.region: us-east-2`" in r.stderr, r.stderr
    r = run([deployer, "--config", config, "--region", "us-east-2", "policy", "--stage", "prod"])
    assert r.returncode == 0, r.stderr
    r = run([deployer, "--config", config, "--region", "mars-1", "policy", "--stage", "alice"])
    assert r.returncode == 1 and "--region" in r.stderr and "not an AWS region" in r.stderr
