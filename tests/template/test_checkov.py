"""checkov (pinned, --skip-download) on the rendered templates: every failed check is listed,
with the reason it is accepted, in docs/SECURITY-CHECKS.md, and every check listed there still
fails (so the list never goes stale).

Relies on: checkov's built-in CloudFormation policies, offline.
"""

import json
import re

import pytest

from conftest import HARDENED_STAGES, LOG_BUCKET_STAGES, ROOT, STAGES, run, tool


def accepted_checks(hardened: bool = False, log_bucket_configured: bool = False) -> set[str]:
    """The checks the doc lists; on a hardened stage, less those it says hardened stages pass
    (and, when the stage names its `access_logs_bucket`, those it says such stages pass)."""
    text = (ROOT / "docs" / "SECURITY-CHECKS.md").read_text()
    rows = re.findall(r"^\| (CKV2?_AWS_\d+) \|(.*)$", text, re.M)
    return {check for check, rest in rows
            if not (hardened and "Hardened stages pass" in rest)
            and not (hardened and log_bucket_configured and "configured `access_logs_bucket` pass" in rest)}


def failed_checks(path) -> set[str]:
    r = run([tool("checkov"), "-f", path, "--framework", "cloudformation", "--skip-download", "--quiet", "-o", "json"])
    assert r.returncode in (0, 1), r.stderr
    report = json.loads(r.stdout)
    reports = report if isinstance(report, list) else [report]
    return {c["check_id"] for rep in reports for c in rep["results"]["failed_checks"]}


@pytest.mark.parametrize("stage", STAGES)
def test_every_failed_check_is_accepted_in_docs(rendered, stage):
    failed = failed_checks(rendered[(stage, "json")])
    accepted = accepted_checks(hardened=stage in HARDENED_STAGES, log_bucket_configured=stage in LOG_BUCKET_STAGES)
    assert failed - accepted == set(), f"failed checks not documented in docs/SECURITY-CHECKS.md: {sorted(failed - accepted)}"
    assert accepted - failed == set(), f"documented as failing but passing now (remove them): {sorted(accepted - failed)}"


def test_checkov_sees_a_public_unencrypted_bucket(rendered, tmp_path):
    """The gate can fail: a bucket without encryption or public access block is reported."""
    t = json.loads(rendered[("alice", "json")].read_text())
    props = t["Resources"]["SourceBucket"]["Properties"]
    del props["BucketEncryption"], props["PublicAccessBlockConfiguration"], props["VersioningConfiguration"]
    path = tmp_path / "weak.json"
    path.write_text(json.dumps(t))
    new = failed_checks(path) - accepted_checks()
    assert {"CKV_AWS_21", "CKV_AWS_53"} <= new, new
