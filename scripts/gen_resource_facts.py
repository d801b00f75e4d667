#!/usr/bin/env python3
"""Generates crates/stack-model/data/resource_facts.json: for every resource type the stage and
bootstrap stacks may hold, its create-only properties and whether it holds data (what `diff`
predicts; and those a change may replace it for, its conditionally create-only ones), each handler's IAM actions with the decision taken for it (required, or needed only
when a property is set), and for every such action the resource types, ARN formats and
condition keys IAM authorizes it on. One source for `diff`, the CloudFormation role's policy,
preflight and the emulator's enforcement.

Inputs, all pinned: the resource schemas shipped with cfn-lint (requirements-dev.txt;
`handlers.<handler>.permissions`, `createOnlyProperties`), the IAM definitions shipped with
parliament (the service authorization reference), and the hand-kept decisions of
crates/stack-model/data/handler_decisions.json. The schemas' lists are supersets: an action IAM
does not define is recorded under `unknown` and granted nothing: either no IAM action at all
(Logs' `s3:REST.PUT.OBJECT`, the bucket handler's `s3:DeleteBucketCors`, which IAM authorizes as
`s3:PutBucketCORS`) or one newer than the pinned definitions, for features no stage sets (Lambda's
capacity providers, log groups' deletion protection); the generated file lists them, so a new
one shows in review. An
action the decisions tie to a property carries it under `when`, with the handler source.

It also writes crates/deployer/data/resource_schemas.json.gz: the same facts for every type
the pinned schemas define (`decided: false`: no recorded decisions, so every action a handler
lists counts), with what synth checks a resource added by a user against (its settable
properties, required ones, `Fn::GetAtt` attributes, tag property, the regions that lack it). The
deployer embeds it compressed and registers it with stack-model; stack-model's own file wins for
the types it holds.

    python scripts/gen_resource_facts.py          # rewrite both files
    python scripts/gen_resource_facts.py --check  # exit 1 when either differs (a test runs this)
"""

import gzip

import json
import re
import sys
from importlib import metadata
from pathlib import Path

import cfnlint
import parliament

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates" / "stack-model" / "data"
OUT = DATA / "resource_facts.json"
DIGEST = ROOT / "crates" / "deployer" / "data" / "resource_schemas.json.gz"
SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
REGION = "us-east-1"

# ARN formats that parliament's definitions spell otherwise than the call needs:
# - Glue's Data Catalog of an account is `catalog` (Glue developer guide, "Specifying AWS Glue
#   resource ARNs"); parliament's `catalog/${CatalogName}` is the multi-catalog form.
ARN_FORMATS = {
    "glue:catalog": ["arn:${Partition}:glue:${Region}:${Account}:catalog"],
    # CloudWatch Logs authorizes calls on a log group as `log-group:NAME` and, for some
    # (PutRetentionPolicy, the stream operations), as `log-group:NAME:*` (CloudWatch Logs user
    # guide, "CloudWatch Logs permissions reference"): both forms.
    "logs:log-group": [
        "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}",
        "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:*",
    ],
}


def schema_for(type_name: str) -> dict:
    index = json.loads((SCHEMAS / "providers" / f"{REGION}.json").read_text())
    return json.loads((SCHEMAS / "resources" / f"{index[type_name]}.json").read_text())


def shape(schema: dict) -> dict:
    """What synth checks a resource of this type against: the properties a template may set
    (read-only ones are the type's `Fn::GetAtt` attributes), the required ones, and the
    property that carries tags (a list of Key/Value or a map)."""
    read_only = [p.removeprefix("/properties/") for p in schema.get("readOnlyProperties", [])]
    props = schema.get("properties", {})
    settable = sorted(p for p in props if p not in read_only)
    out = {
        "properties": settable,
        "required": sorted(schema.get("required", [])),
        "attributes": sorted(p.replace("/", ".") for p in read_only),
        "tags": None,
    }
    tagging = schema.get("tagging", {})
    tag_property = tagging.get("tagProperty", "/properties/Tags").removeprefix("/properties/")
    if tagging.get("taggable", False) and tag_property in props and "/" not in tag_property:
        t = props[tag_property]
        ref = t.get("items", {}).get("$ref") or t.get("$ref") or ""
        is_list = t.get("type") == "array" or "items" in t
        if not is_list and ref.startswith("#/definitions/"):
            d = schema.get("definitions", {}).get(ref.split("/")[-1], {})
            is_list = d.get("type") == "array"
        out["tags"] = {"property": tag_property, "form": "list" if is_list else "map"}
    return out


def derived_names(schema: dict, actions: list, facts: dict) -> dict:
    """The ARN variables an instance of a type without recorded decisions fills: a variable
    named as one of its settable properties is that property (`*` where the template leaves it
    to AWS), one named as a read-only property is `*` (AWS picks it at create time)."""
    read_only = {p.removeprefix("/properties/") for p in schema.get("readOnlyProperties", [])}
    props = set(schema.get("properties", {}))
    names = {}
    for a in actions:
        for r in facts[a]["resources"]:
            for fmt in r["arns"]:
                for var in re.findall(r"\$\{([A-Za-z0-9]+)\}", fmt):
                    if var in ("Partition", "Region", "Account"):
                        continue
                    if var in read_only:
                        names[var] = "*"
                    elif var in props:
                        names[var] = var
    return dict(sorted(names.items()))


def iam_definitions() -> dict:
    services = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    by_prefix: dict = {}
    for s in services:
        by_prefix.setdefault(s["prefix"], []).append(s)
    return by_prefix


def action_facts(action: str, iam: dict) -> dict | None:
    prefix, _, name = action.partition(":")
    for service in iam.get(prefix, []):
        formats = {r["resource"]: r["arn"] for r in service["resources"]}
        for p in service["privileges"]:
            if p["privilege"].lower() != name.lower():
                continue
            resources, conditions = [], set()
            for rt in p["resource_types"]:
                conditions.update(rt["condition_keys"])
                t = rt["resource_type"]
                if not t:
                    continue
                required = t.endswith("*")
                t = t.rstrip("*")
                resources.append({
                    "type": t,
                    "required": required,
                    "arns": ARN_FORMATS.get(f"{prefix}:{t}", [formats[t]]),
                })
            return {"resources": resources, "condition_keys": sorted(conditions)}
    return None


def handler_entries(schema: dict, names, iam: dict, actions: dict) -> tuple[dict, set]:
    """Each handler's actions IAM defines (`{"action": a}`, in the schema's order, their IAM
    facts added to `actions`), and the actions it does not define."""
    handlers, unknown = {}, set()
    for h in names:
        out = []
        for a in schema.get("handlers", {}).get(h, {}).get("permissions", []):
            f = action_facts(a, iam)
            if f is None:
                unknown.add(a)
                continue
            actions[a] = f
            out.append({"action": a})
        handlers[h] = out
    return handlers, unknown


def stateful_types(decisions: dict) -> set:
    """Data at risk: cfn-lint's list of stateful types, and the documented additions."""
    stateful = set(json.loads((SCHEMAS.parent / "AdditionalSpecs" / "StatefulResources.json")
                              .read_text())["ResourceTypes"])
    return stateful | {t for t in decisions["stateful_additions"] if t != "about"}


def generate() -> dict:
    decisions = json.loads((DATA / "handler_decisions.json").read_text())
    iam = iam_definitions()
    by_action = {}
    for d in decisions["decisions"]:
        for h in d["handlers"]:
            by_action[(d["type"], h, d["action"])] = d
    types, actions = {}, {}
    stateful = stateful_types(decisions)
    for t in decisions["types"]:
        schema = schema_for(t)
        handlers, unknown = handler_entries(schema, decisions["handlers"], iam, actions)
        for h, out in handlers.items():
            for entry in out:
                d = by_action.get((t, h, entry["action"]))
                if d:
                    entry["when"] = d["when"]
                    entry["source"] = d["source"]
        types[t] = {
            "create_only": sorted(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", [])),
            # Replaced or not by the resource's state (an EMR Serverless application's
            # settings change in place only while it is stopped): `diff` says "may replace".
            "conditional_create_only": sorted(
                p.removeprefix("/properties/") for p in schema.get("conditionalCreateOnlyProperties", [])),
            "stateful": t in stateful,
            "names": decisions["names"][t],
            "passed_to": decisions["passed_to"].get(t),
            "handlers": handlers,
            "unknown": sorted(unknown),
            "decided": True,
            **shape(schema),
        }
    return {
        "generated_by": "scripts/gen_resource_facts.py (do not edit)",
        "cfn_lint": metadata.version("cfn-lint"),
        "parliament": metadata.version("parliament"),
        "types": types,
        "actions": dict(sorted(actions.items())),
    }


def digest() -> dict:
    """Every type of the pinned schemas, without decisions (see the module's doc)."""
    iam = iam_definitions()
    stateful = stateful_types(json.loads((DATA / "handler_decisions.json").read_text()))
    # cfn-lint's providers also hold `sam` (the SAM transform's types): not a region.
    regions = sorted(p.stem for p in (SCHEMAS / "providers").glob("*-*.json"))
    indexes = {r: json.loads((SCHEMAS / "providers" / f"{r}.json").read_text()) for r in regions}
    index = indexes[REGION]
    types, actions = {}, {}
    for t in sorted(index):
        schema = json.loads((SCHEMAS / "resources" / f"{index[t]}.json").read_text())
        handlers, unknown = handler_entries(schema, ("create", "read", "update", "delete"), iam, actions)
        listed = [e["action"] for out in handlers.values() for e in out]
        types[t] = {
            "create_only": sorted(p.removeprefix("/properties/") for p in schema.get("createOnlyProperties", [])),
            "conditional_create_only": sorted(
                p.removeprefix("/properties/") for p in schema.get("conditionalCreateOnlyProperties", [])),
            "stateful": t in stateful,
            "names": derived_names(schema, listed, actions),
            "passed_to": None,
            "handlers": handlers,
            "unknown": sorted(unknown),
            "decided": False,
            "absent_in": [r for r in regions if t not in indexes[r]],
            **shape(schema),
        }
    return {
        "generated_by": "scripts/gen_resource_facts.py (do not edit)",
        "cfn_lint": metadata.version("cfn-lint"),
        "parliament": metadata.version("parliament"),
        "region": REGION,
        "regions": regions,
        "types": types,
        "actions": dict(sorted(actions.items())),
    }


def main() -> int:
    text = json.dumps(generate(), indent=1, sort_keys=True) + "\n"
    # Compact, and gzip without a timestamp, so the same inputs give the same bytes.
    packed = gzip.compress(json.dumps(digest(), separators=(",", ":"), sort_keys=True).encode(), 9, mtime=0)
    if "--check" in sys.argv:
        stale = [f for f, want in ((OUT, text.encode()), (DIGEST, packed)) if not f.exists() or f.read_bytes() != want]
        for f in stale:
            print(f"{f} differs from what the pinned schemas and decisions give: run {sys.argv[0]}", file=sys.stderr)
        return 1 if stale else 0
    OUT.write_text(text)
    DIGEST.parent.mkdir(parents=True, exist_ok=True)
    DIGEST.write_bytes(packed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
