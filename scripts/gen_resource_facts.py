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

    python scripts/gen_resource_facts.py          # rewrite the file
    python scripts/gen_resource_facts.py --check  # exit 1 when the file differs (a test runs this)
"""

import json
import sys
from importlib import metadata
from pathlib import Path

import cfnlint
import parliament

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "crates" / "stack-model" / "data"
OUT = DATA / "resource_facts.json"
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


def generate() -> dict:
    decisions = json.loads((DATA / "handler_decisions.json").read_text())
    iam = iam_definitions()
    by_action = {}
    for d in decisions["decisions"]:
        for h in d["handlers"]:
            by_action[(d["type"], h, d["action"])] = d
    types, actions = {}, {}
    # Data at risk: cfn-lint's list of stateful types, and the documented additions.
    stateful = set(json.loads((SCHEMAS.parent / "AdditionalSpecs" / "StatefulResources.json")
                              .read_text())["ResourceTypes"])
    stateful |= {t for t in decisions["stateful_additions"] if t != "about"}
    for t in decisions["types"]:
        schema = schema_for(t)
        handlers, unknown = {}, set()
        for h in decisions["handlers"]:
            out = []
            for a in schema.get("handlers", {}).get(h, {}).get("permissions", []):
                facts = action_facts(a, iam)
                if facts is None:
                    unknown.add(a)
                    continue
                actions[a] = facts
                entry = {"action": a}
                d = by_action.get((t, h, a))
                if d:
                    entry["when"] = d["when"]
                    entry["source"] = d["source"]
                out.append(entry)
            handlers[h] = out
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
        }
    return {
        "generated_by": "scripts/gen_resource_facts.py (do not edit)",
        "cfn_lint": metadata.version("cfn-lint"),
        "parliament": metadata.version("parliament"),
        "types": types,
        "actions": dict(sorted(actions.items())),
    }


def main() -> int:
    text = json.dumps(generate(), indent=1, sort_keys=True) + "\n"
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} differs from what the pinned schemas and decisions give: run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
