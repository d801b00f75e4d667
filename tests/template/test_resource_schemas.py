"""Every rendered resource validates against the CloudFormation resource schema of its type.

Relies on: the resource provider schemas shipped inside the pinned cfn-lint package, looked up
through its provider index (`providers/<region>.json`: type -> schema file), offline. Checked:
required properties, no unknown properties, value types and enums (a value that is an intrinsic
function, resolved only at deploy time, is accepted wherever a value is). Also checked: each
property's doc in stack-model says "Replacement" exactly when the schema lists it create-only.
"""

import json
import re
from pathlib import Path

import cfnlint
import jsonschema
import pytest
import regex  # the schemas use \p{...} classes in patterns, which `re` lacks (a cfn-lint dependency)

from conftest import ROOT, STAGES

SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"


def schema_for(type_name: str, region: str = "us-east-1") -> dict:
    index = json.loads((SCHEMAS / "providers" / f"{region}.json").read_text())
    return json.loads((SCHEMAS / "resources" / f"{index[type_name]}.json").read_text())


def is_intrinsic(value) -> bool:
    return (
        isinstance(value, dict)
        and len(value) == 1
        and next(iter(value)) in {"Ref", "Condition"} | {k for k in value if k.startswith("Fn::")}
    )


def _tolerant(check):
    def wrapped(validator, value, instance, schema):
        if is_intrinsic(instance):
            return
        yield from check(validator, value, instance, schema) or ()

    return wrapped


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_BASE = jsonschema.Draft7Validator
_CHECKS = dict(_BASE.VALIDATORS, pattern=_pattern)
TolerantValidator = jsonschema.validators.extend(_BASE, {k: _tolerant(v) for k, v in _CHECKS.items()})


def violations(type_name: str, properties: dict) -> list[str]:
    schema = schema_for(type_name)
    validator = TolerantValidator(schema)
    found = [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(properties)]
    for ro in schema.get("readOnlyProperties", []):
        name = ro.split("/")[2]
        if ro.count("/") == 2 and name in properties:
            found.append(f"/{name}: read-only property set")
    return found


@pytest.mark.parametrize("stage", STAGES)
def test_every_resource_matches_its_schema(rendered, stage):
    template = json.loads(rendered[(stage, "json")].read_text())
    problems = []
    for logical_id, resource in template["Resources"].items():
        for v in violations(resource["Type"], resource.get("Properties", {})):
            problems.append(f"{logical_id} ({resource['Type']}){v}")
    assert not problems, "\n".join(problems)


def test_the_validator_catches_unknown_missing_and_mistyped():
    bad = {"Code": {"S3Bucket": "b", "S3Key": "k"}, "MemorySize": "lots", "Tracing": {"Mode": "Active"}}
    found = "\n".join(violations("AWS::Lambda::Function", bad))
    assert "'Role' is a required property" in found
    assert "'lots' is not of type 'integer'" in found
    assert "Additional properties are not allowed ('Tracing' was unexpected)" in found
    assert violations("AWS::Lambda::Function", {"Code": {"S3Bucket": {"Ref": "X"}, "S3Key": "k"}, "Role": {"Fn::GetAtt": ["R", "Arn"]}}) == []


# --- The "Update:" line of each typed property agrees with the schema -----------------------

STRUCT = re.compile(r"((?:\s*///[^\n]*\n)*)\s*(?:#\[[^\n]*\]\s*)*pub struct (\w+) \{(.*?)\n\}", re.S)
FIELD = re.compile(r"((?:[ \t]*///[^\n]*\n)+)(?:[ \t]*#\[[^\n]*\]\n)*[ \t]*pub (\w+):")
IMPL = re.compile(r"impl Resource for (\w+) \{\s*const TYPE: &'static str = \"([^\"]+)\"")


def pascal(snake: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in snake.split("_"))


def documented_update_behaviour():
    for path in sorted((ROOT / "crates/stack-model/src/resource").glob("*.rs")):
        text = path.read_text()
        types = dict(IMPL.findall(text))
        for _, name, body in STRUCT.findall(text):
            if name in types:
                for doc, field in FIELD.findall(body + "\n"):
                    yield path.name, types[name], pascal(field), doc


def test_property_docs_say_what_the_schema_says_about_replacement():
    checked = 0
    for file, type_name, prop, doc in documented_update_behaviour():
        create_only = f"/properties/{prop}" in schema_for(type_name).get("createOnlyProperties", [])
        assert prop in schema_for(type_name)["properties"], f"{file}: {type_name} has no property {prop}"
        if create_only:
            assert "Update: **Replacement**" in doc, f"{file}: {type_name}.{prop} is create-only; its doc must say so"
        else:
            assert "Update: in place" in doc, f"{file}: {type_name}.{prop} updates in place; its doc says: {doc.strip()}"
        checked += 1
    assert checked >= 50, f"only {checked} documented properties found: is the parser still matching?"
