"""The diff's create-only table (crates/deployer/src/diff/schema.rs) equals the resource
schemas cfn-lint ships, for every type the pipeline's template uses.

Relies on: cfn-lint's bundled schemas (offline)."""
import json
import re

from conftest import ROOT
from test_resource_schemas import schema_for


def table():
    text = (ROOT / "crates" / "deployer" / "src" / "diff" / "schema.rs").read_text()
    body = text[text.index("pub const CREATE_ONLY"):text.index("];")]
    return {t: re.findall(r'"([^"]+)"', props) for t, props in re.findall(r'\(\s*"(AWS::[^"]+)",\s*&\[(.*?)\]', body, re.S)}


def test_the_table_matches_the_schemas_for_every_type_in_the_template(rendered):
    ours = table()
    used = {r["Type"] for r in json.loads(rendered[("alice", "json")].read_text())["Resources"].values()}
    for t in sorted(used):
        expected = sorted(p.removeprefix("/properties/") for p in schema_for(t).get("createOnlyProperties", []))
        assert sorted(ours.get(t, [])) == expected, t
