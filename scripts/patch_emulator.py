#!/usr/bin/env python3
"""Fixes MiniStack's own mistakes where they live: exact-text edits of the pinned package
(requirements-emulator.txt), each with the AWS behaviour it restores. Run by
scripts/setup-emulator right after the install; the virtualenv's key includes this file, so
a changed patch makes a fresh one. A patch whose text is not found fails the setup (the pin
moved): re-check the patch against the new release rather than skip it.

Each patched behaviour has its own test in tests/e2e/test_emulator_patches.py, and the
README's "The local emulator" section names them.

    python scripts/patch_emulator.py VENV
"""

import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    name: str
    file: str  # relative to the ministack package
    why: str
    old: str
    new: str


PATCHES = [
    Patch(
        name="template-url-virtual-hosted",
        file="services/cloudformation/helpers.py",
        why=(
            "A TemplateURL in S3's virtual-hosted form (https://BUCKET.s3.REGION.amazonaws.com/KEY), "
            "which CloudFormation reads in every region, was parsed as if the bucket were the "
            "first segment of the path."
        ),
        old='''            path = parsed.path.lstrip("/")
            parts = path.split("/", 1)''',
        new='''            path = parsed.path.lstrip("/")
            # pdcase patch template-url-virtual-hosted: the bucket is in the host name.
            _host = parsed.hostname or ""
            if ".s3." in _host:
                path = _host.split(".s3.", 1)[0] + "/" + path
            parts = path.split("/", 1)''',
    ),
    Patch(
        name="glue-crawler-arn",
        file="core/iam_actions.py",
        why=(
            "Glue's crawler operations (StartCrawler, GetCrawler, ...) name the crawler in `Name`; "
            "the emulator authorized them against `table/<name>`, where AWS uses `crawler/<name>`."
        ),
        old='''    if service == "glue":
        db = _safe_json_field(body, "DatabaseName")''',
        new='''    if service == "glue":
        # pdcase patch glue-crawler-arn: crawler operations are authorized on crawler/<Name>.
        _op = headers.get("x-amz-target", "").rsplit(".", 1)[-1]
        if _op.endswith("Crawler") and _safe_json_field(body, "Name"):
            return f"arn:aws:glue:{region}:{account_id}:crawler/{_safe_json_field(body, 'Name')}"
        db = _safe_json_field(body, "DatabaseName")''',
    ),
    Patch(
        name="logs-stream-arn",
        file="core/iam_actions.py",
        why=(
            "CreateLogStream and PutLogEvents are authorized on the log stream, "
            "`log-group:NAME:log-stream:STREAM`, which a policy grants with `log-group:NAME:*` (as "
            "Lambda's own execution policies do); the emulator checked `log-group:NAME`, so such a "
            "policy was denied and one on the bare group name allowed."
        ),
        old='''        name = _safe_json_field(body, "logGroupName")
        if name:
            return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"''',
        new='''        name = _safe_json_field(body, "logGroupName")
        # pdcase patch logs-stream-arn: stream operations are authorized on the stream.
        if name and action in {"CreateLogStream", "PutLogEvents"}:
            return f"arn:aws:logs:{region}:{account_id}:log-group:{name}:log-stream:{_safe_json_field(body, 'logStreamName')}"
        if name:
            return f"arn:aws:logs:{region}:{account_id}:log-group:{name}"''',
    ),
    Patch(
        name="instance-profile-ref-create",
        file="services/cloudformation/provisioners.py",
        why=(
            "`Ref` of an `AWS::IAM::InstanceProfile` is its name (CloudFormation user guide); the "
            "emulator gave its ARN, so the stack's output and the cluster's JobFlowRole held an ARN. "
            "The physical id becomes the name; update and delete find the profile by either."
        ),
        old='''    profile = _iam._instance_profiles[name]
    profile["Roles"] = _iam_ip_roles(props)
    return profile["Arn"], {"Arn": profile["Arn"]}''',
        new='''    profile = _iam._instance_profiles[name]
    profile["Roles"] = _iam_ip_roles(props)
    # pdcase patch instance-profile-ref-create: Ref is the name.
    return name, {"Arn": profile["Arn"]}''',
    ),
    Patch(
        name="instance-profile-ref-update",
        file="services/cloudformation/provisioners.py",
        why="(with instance-profile-ref-create) the update finds the profile by its name.",
        old='''    profile = next(
        (ip for ip in _iam._instance_profiles.values() if ip.get("Arn") == physical_id), None)''',
        new='''    # pdcase patch instance-profile-ref-update: the physical id is the name (or an old ARN).
    profile = next(
        (ip for n, ip in _iam._instance_profiles.items() if physical_id in (n, ip.get("Arn"))), None)''',
    ),
    Patch(
        name="instance-profile-ref-return",
        file="services/cloudformation/provisioners.py",
        why="(with instance-profile-ref-create) an in-place update keeps the name as physical id.",
        old='''    profile["Roles"] = _iam_ip_roles(new_props)
    return physical_id, {"Arn": physical_id}''',
        new='''    profile["Roles"] = _iam_ip_roles(new_props)
    # pdcase patch instance-profile-ref-return: the ARN attribute is the profile's ARN.
    return physical_id, {"Arn": profile["Arn"]}''',
    ),
    Patch(
        name="instance-profile-ref-delete",
        file="services/cloudformation/provisioners.py",
        why="(with instance-profile-ref-create) the delete finds the profile by its name.",
        old='''    for name, ip in list(_iam._instance_profiles.items()):
        if ip.get("Arn") == physical_id:''',
        new='''    # pdcase patch instance-profile-ref-delete: the physical id is the name (or an old ARN).
    for name, ip in list(_iam._instance_profiles.items()):
        if physical_id in (name, ip.get("Arn")):''',
    ),
    Patch(
        name="bucket-encryption",
        file="services/cloudformation/provisioners.py",
        why=(
            "CloudFormation applies an `AWS::S3::Bucket`'s `BucketEncryption` (PutBucketEncryption); "
            "the emulator ignored it, so a bucket declared with SSE-KMS and the stage's key reported "
            "S3's default SSE-S3."
        ),
        old='''_S3_BUCKET_CONFIGURATIONS = (
    ("CorsConfiguration", _s3_cors_xml, _s3._put_bucket_cors, _s3._delete_bucket_cors),''',
        new='''def _pdcase_s3_encryption_xml(encryption):
    """pdcase patch bucket-encryption: a ``BucketEncryption`` as the PutBucketEncryption body."""
    from xml.etree.ElementTree import Element, SubElement, tostring

    root = Element("ServerSideEncryptionConfiguration", xmlns=_s3.S3_NS)
    for rule in encryption.get("ServerSideEncryptionConfiguration") or []:
        rule_el = SubElement(root, "Rule")
        default = rule.get("ServerSideEncryptionByDefault") or {}
        by_default = SubElement(rule_el, "ApplyServerSideEncryptionByDefault")
        SubElement(by_default, "SSEAlgorithm").text = str(default.get("SSEAlgorithm", "AES256"))
        if default.get("KMSMasterKeyID"):
            SubElement(by_default, "KMSMasterKeyID").text = str(default["KMSMasterKeyID"])
        if "BucketKeyEnabled" in rule:
            SubElement(rule_el, "BucketKeyEnabled").text = str(bool(rule["BucketKeyEnabled"])).lower()
    return tostring(root)


_S3_BUCKET_CONFIGURATIONS = (
    ("BucketEncryption", _pdcase_s3_encryption_xml, _s3._put_bucket_encryption, _s3._delete_bucket_encryption),
    ("CorsConfiguration", _s3_cors_xml, _s3._put_bucket_cors, _s3._delete_bucket_cors),''',
    ),
    Patch(
        name="bucket-logging",
        file="services/cloudformation/provisioners.py",
        why=(
            "CloudFormation applies an `AWS::S3::Bucket`'s `LoggingConfiguration` "
            "(PutBucketLogging); the emulator ignored it, so GetBucketLogging of a hardened "
            "stage's bucket reported no logging. (The emulator delivers no access logs either way.)"
        ),
        old='''_S3_BUCKET_CONFIGURATIONS = (
    ("BucketEncryption", _pdcase_s3_encryption_xml, _s3._put_bucket_encryption, _s3._delete_bucket_encryption),''',
        new='''def _pdcase_s3_logging_xml(logging):
    """pdcase patch bucket-logging: a ``LoggingConfiguration`` as the PutBucketLogging body."""
    from xml.etree.ElementTree import Element, SubElement, tostring

    root = Element("BucketLoggingStatus", xmlns=_s3.S3_NS)
    enabled = SubElement(root, "LoggingEnabled")
    SubElement(enabled, "TargetBucket").text = str(logging.get("DestinationBucketName") or "")
    SubElement(enabled, "TargetPrefix").text = str(logging.get("LogFilePrefix") or "")
    return tostring(root)


def _pdcase_s3_delete_logging(name):
    return _s3._put_bucket_logging(name, f'<BucketLoggingStatus xmlns="{_s3.S3_NS}"/>'.encode())


_S3_BUCKET_CONFIGURATIONS = (
    ("LoggingConfiguration", _pdcase_s3_logging_xml, _s3._put_bucket_logging, _pdcase_s3_delete_logging),
    ("BucketEncryption", _pdcase_s3_encryption_xml, _s3._put_bucket_encryption, _s3._delete_bucket_encryption),''',
    ),
    Patch(
        name="athena-query-workgroup-arn",
        file="core/iam_actions.py",
        why=(
            "Athena authorizes the operations on a query (GetQueryExecution, GetQueryResults, "
            "StopQueryExecution) on the query's work group (Athena user guide, \"Example workgroup "
            "policies\": running queries in a specified workgroup); the emulator, finding no `WorkGroup` "
            "in their request, authorized them on `*`, so a policy that names the work group "
            "(the deploy policy's `QueryInStageWorkGroup`) was refused."
        ),
        old='''    if service == "athena":
        wg = _safe_json_field(body, "WorkGroup")''',
        new='''    if service == "athena":
        wg = _safe_json_field(body, "WorkGroup")
        # pdcase patch athena-query-workgroup-arn: a query's operations act on its work group.
        if not wg and _safe_json_field(body, "QueryExecutionId"):
            from ministack.services import athena as _pdcase_athena

            _execution = _pdcase_athena._executions.get(_safe_json_field(body, "QueryExecutionId")) or {}
            wg = _execution.get("WorkGroup")''',
    ),
    Patch(
        name="athena-symlink-manifest",
        file="services/athena.py",
        why=(
            "Athena reads a table whose InputFormat is Hive's SymlinkTextInputFormat through its "
            "manifests: the objects under the location list the data files to read, one URI per "
            "line (Delta Lake's \"Presto and Athena to Delta Lake integration\"). The emulator "
            "read the manifests themselves as the table's data."
        ),
        old='''        files = _materialize_table_files(s3_location, workdirs)
        relation = _table_relation(table_data, files) if files else _empty_relation(table_data)''',
        new='''        files = _materialize_table_files(s3_location, workdirs)
        # pdcase patch athena-symlink-manifest: a symlink table is the files its manifests name.
        if str((table_data.get("StorageDescriptor") or {}).get("InputFormat", "")).endswith(".SymlinkTextInputFormat"):
            files = _pdcase_symlink_targets(files, workdirs)
        relation = _table_relation(table_data, files) if files else _empty_relation(table_data)''',
    ),
    Patch(
        name="athena-symlink-files",
        file="services/athena.py",
        why="The reader of athena-symlink-manifest: each named S3 object, copied out like a table's files.",
        old='''def _hidden(relative_key):''',
        new='''def _pdcase_symlink_targets(manifests, workdirs):
    """pdcase patch athena-symlink-files: the data files that a symlink table's manifests name
    (one s3:// URI per line), copied out of the S3 store as a table's files are. A query fails
    when a manifest names something that is not an object."""
    import tempfile

    from ministack.services import s3 as s3_svc

    root = tempfile.mkdtemp(prefix="ministack-athena-symlink-")
    workdirs.append(root)
    files = []
    for manifest in manifests:
        with open(manifest, encoding="utf-8") as fh:
            uris = [line.strip() for line in fh if line.strip()]
        for uri in uris:
            parsed = urlparse(uri)
            key = parsed.path.lstrip("/")
            data = s3_svc._get_object_data(parsed.netloc, key) if parsed.scheme == "s3" and key else None
            if data is None:
                raise ValueError(f"a manifest of the table names {uri}, which is not an S3 object")
            path = os.path.join(root, parsed.netloc, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                out.write(data)
            files.append(path)
    return files


def _hidden(relative_key):''',
    ),
    Patch(
        name="iam-simulate-principal-arn",
        file="core/iam_actions.py",
        why=(
            "SimulatePrincipalPolicy is authorized on the principal it simulates (PolicySourceArn; "
            "service authorization reference, IAM: resource types user, role, group); the emulator "
            "used `*`, refusing a policy that names the principal."
        ),
        old='''        # IAM actions target users, roles, policies — extract from params
        role_name = _query_param(query_params, "RoleName")''',
        new='''        # IAM actions target users, roles, policies — extract from params
        # pdcase patch iam-simulate-principal-arn
        if _query_param(query_params, "PolicySourceArn"):
            return _query_param(query_params, "PolicySourceArn")
        role_name = _query_param(query_params, "RoleName")''',
    ),
    Patch(
        name="iam-simulate-all-resources-and-context",
        file="services/iam.py",
        why=(
            "SimulatePrincipalPolicy and SimulateCustomPolicy evaluate every action against every "
            "ARN of ResourceArns (the emulator read only the first) with the ContextEntries given "
            "(ignored), answering per action and resource."
        ),
        old='''    resource_arn = _p(p, "ResourceArns.member.1") or "*"
    return actions, resource_arn''',
        new='''    # pdcase patch iam-simulate-all-resources-and-context: every ARN, and the context.
    arns = []
    idx = 1
    while _p(p, f"ResourceArns.member.{idx}"):
        arns.append(_p(p, f"ResourceArns.member.{idx}"))
        idx += 1
    context = {}
    idx = 1
    while _p(p, f"ContextEntries.member.{idx}.ContextKeyName"):
        key = _p(p, f"ContextEntries.member.{idx}.ContextKeyName").lower()
        values, j = [], 1
        while _p(p, f"ContextEntries.member.{idx}.ContextKeyValues.member.{j}"):
            values.append(_p(p, f"ContextEntries.member.{idx}.ContextKeyValues.member.{j}"))
            j += 1
        context[key] = values[0] if len(values) == 1 else values
        idx += 1
    return actions, (arns or ["*"], context)''',
    ),
    Patch(
        name="iam-simulate-per-resource",
        file="services/iam.py",
        why="The simulation's results: one per action and resource, evaluated with the context.",
        old='''    from ministack.core.iam_evaluator import EvalContext, evaluate
    members = ""
    for action in actions:
        if policies:''',
        new='''    from ministack.core.iam_evaluator import EvalContext, evaluate
    # pdcase patch iam-simulate-per-resource: each ARN, with the given context.
    arns, context = resource_arn if isinstance(resource_arn, tuple) else ([resource_arn], {})
    members = ""
    for action, resource_arn in [(a, r) for a in actions for r in arns]:
        if policies:''',
    ),
    Patch(
        name="iam-simulate-context-evaluated",
        file="services/iam.py",
        why="The context entries reach the evaluator (condition keys such as iam:PassedToService).",
        old='''                source_ip="127.0.0.1",
                secure_transport=False,
            )
            result = evaluate(ctx, policies)''',
        new='''                source_ip="127.0.0.1",
                secure_transport=False,
                # pdcase patch iam-simulate-context-evaluated
                service_context=dict(context, **{"aws:tagkeys": context.get("aws:tagkeys")}),
            )
            result = evaluate(ctx, policies)''',
    ),
    Patch(
        name="cfn-service-role",
        file="services/cloudformation/__init__.py",
        why=(
            "A stack operation runs as the stack's service role (RoleARN, kept for later operations) "
            "or with the caller's credentials, and passing the role needs iam:PassRole "
            "(iam:PassedToService cloudformation.amazonaws.com); the emulator ignored the role and "
            "acted with its own authority."
        ),
        old='''    action = _p(params, "Action")
    handler = _ACTION_HANDLERS.get(action)''',
        new='''    action = _p(params, "Action")
    # pdcase patch cfn-service-role: the stack's authority, and passing its role.
    from . import pdcase_authority
    refused = pdcase_authority.on_request(action, params, headers, query_params)
    if refused:
        return refused
    handler = _ACTION_HANDLERS.get(action)''',
    ),
    Patch(
        name="cfn-service-role-reset",
        file="services/cloudformation/__init__.py",
        why="A reset forgets the stacks' roles with the stacks.",
        old='''def reset():
    _stacks.clear()''',
        new='''def reset():
    # pdcase patch cfn-service-role-reset
    from . import pdcase_authority
    pdcase_authority.reset()
    _stacks.clear()''',
    ),
    Patch(
        name="cfn-describe-role-arn",
        file="services/cloudformation/handlers.py",
        why="DescribeStacks names the stack's service role (RoleARN), as AWS does.",
        old='''            f"<Description>{_esc(s.get('Description', ''))}</Description>"
            f"<DisableRollback>''',
        new='''            f"<Description>{_esc(s.get('Description', ''))}</Description>"
            # pdcase patch cfn-describe-role-arn
            f"{_pdcase_role_xml(s)}"
            f"<DisableRollback>''',
    ),
    Patch(
        name="cfn-describe-role-arn-helper",
        file="services/cloudformation/handlers.py",
        why="The RoleARN element of a described stack.",
        old='''def _describe_stacks(params):''',
        new='''def _pdcase_role_xml(s):
    # pdcase patch cfn-describe-role-arn-helper
    from . import pdcase_authority
    role = pdcase_authority.role_of(s["StackName"])
    return f"<RoleARN>{_esc(role)}</RoleARN>" if role else ""


def _describe_stacks(params):''',
    ),
    Patch(
        name="cfn-handler-permissions-create",
        file="services/cloudformation/provisioners.py",
        why=(
            "Each resource's create (and read) handler permissions, from the resource schemas and "
            "the property decisions (resource_facts.json), are authorized against the stack's role "
            "or caller before it is created; a refusal fails the resource with AWS's reason."
        ),
        old='''    """Provision a resource. Returns (physical_id, attributes)."""
    handler = _RESOURCE_HANDLERS.get(resource_type)''',
        new='''    """Provision a resource. Returns (physical_id, attributes)."""
    # pdcase patch cfn-handler-permissions-create
    from . import pdcase_authority
    pdcase_authority.authorize("create", resource_type, props, stack_name)
    handler = _RESOURCE_HANDLERS.get(resource_type)''',
    ),
    Patch(
        name="cfn-handler-permissions-delete",
        file="services/cloudformation/provisioners.py",
        why="Each resource's delete handler permissions, authorized as for create.",
        old='''    """Delete a provisioned resource."""
    handler = _RESOURCE_HANDLERS.get(resource_type)''',
        new='''    """Delete a provisioned resource."""
    # pdcase patch cfn-handler-permissions-delete
    from . import pdcase_authority
    pdcase_authority.authorize("delete", resource_type, props, stack_name, physical_id)
    handler = _RESOURCE_HANDLERS.get(resource_type)''',
    ),
    Patch(
        name="cfn-handler-permissions-update",
        file="services/cloudformation/provisioners.py",
        why="Each changed resource's update (and read) handler permissions, authorized as for create.",
        old='''    if old_props == new_props:
        # Nothing about this resource actually changed''',
        new='''    # pdcase patch cfn-handler-permissions-update (a resource that did not change is not touched)
    if old_props != new_props:
        from . import pdcase_authority
        pdcase_authority.authorize("update", resource_type, new_props, stack_name, physical_id)
    if old_props == new_props:
        # Nothing about this resource actually changed''',
    ),
    Patch(
        name="emr-serverless-route",
        file="core/router.py",
        why=(
            "EMR Serverless (requests signed for `emr-serverless`) is served by the service "
            "scripts/emulator/pdcase_emr_serverless.py adds; the emulator had none."
        ),
        old='''    "scheduler": {
        "host_patterns": [r"scheduler\\."],''',
        new='''    # pdcase patch emr-serverless-route
    "emr-serverless": {
        "host_patterns": [r"emr-serverless\\."],
        "credential_scope": "emr-serverless",
    },
    "scheduler": {
        "host_patterns": [r"scheduler\\."],''',
    ),
    Patch(
        name="emr-serverless-module",
        file="app.py",
        why="(with emr-serverless-route) the service's module, reset and persisted with the others.",
        old='''    "scheduler": {"module": "scheduler"},''',
        new='''    "scheduler": {"module": "scheduler"},
    # pdcase patch emr-serverless-module
    "emr-serverless": {"module": "emr_serverless"},''',
    ),
    Patch(
        name="emr-serverless-iam-namespace",
        file="core/iam_actions.py",
        why=(
            "EMR Serverless's calls are authorized as `emr-serverless:<Operation>` (service "
            "authorization reference), matched by the SDK model's routes."
        ),
        old='''    "scheduler": ["scheduler"],''',
        new='''    "scheduler": ["scheduler"],
    # pdcase patch emr-serverless-iam-namespace
    "emr-serverless": ["emr-serverless"],''',
    ),
    Patch(
        name="emr-serverless-iam-prefix",
        file="core/iam_actions.py",
        why="(with emr-serverless-iam-namespace) the IAM prefix of the service.",
        old='''SERVICE_TO_IAM_NAMESPACE: dict[str, str] = {
    "account": "account",''',
        new='''SERVICE_TO_IAM_NAMESPACE: dict[str, str] = {
    # pdcase patch emr-serverless-iam-prefix
    "emr-serverless": "emr-serverless",
    "account": "account",''',
    ),
    Patch(
        name="emr-serverless-iam-resource",
        file="core/iam_actions.py",
        why=(
            "EMR Serverless authorizes application calls on `/applications/<id>` and GetJobRun "
            "and CancelJobRun on `/applications/<id>/jobruns/<run>` (service authorization reference)."
        ),
        old='''    if service == "scheduler":
        parts = [p for p in path.split("/") if p]''',
        new='''    # pdcase patch emr-serverless-iam-resource
    if service == "emr-serverless":
        from ministack.services.emr_serverless import resource_arn as _emrs_arn
        return _emrs_arn(method, path, region, account_id)

    if service == "scheduler":
        parts = [p for p in path.split("/") if p]''',
    ),
    Patch(
        name="emr-serverless-cloudformation",
        file="services/cloudformation/provisioners.py",
        why=(
            "CloudFormation provisions `AWS::EMRServerless::Application` (it answered "
            "\"Unsupported resource type\"): created through the service, updated in place only "
            "while CREATED or STOPPED, deleted only then, as AWS's handlers do."
        ),
        old='''_RESOURCE_HANDLERS = {
    "AWS::OpenSearchService::Domain": {''',
        new='''def _pdcase_emrs():
    import ministack.services.emr_serverless as _m
    return _m


_RESOURCE_HANDLERS = {
    # pdcase patch emr-serverless-cloudformation
    "AWS::EMRServerless::Application": {
        "create": lambda *a: _pdcase_emrs().cfn_create(*a),
        "update": lambda *a: _pdcase_emrs().cfn_update(*a),
        "update_with_logical_id": True,
        "delete": lambda *a: _pdcase_emrs().cfn_delete(*a),
    },
    "AWS::OpenSearchService::Domain": {''',
    ),
    Patch(
        name="emr-serverless-resource-tags",
        file="services/tagging.py",
        why=(
            "(with emr-serverless-module) `aws:ResourceTag/*` of an EMR Serverless application or "
            "job run is its tags, so a policy conditioned on them is evaluated as on AWS."
        ),
        old='''_RESOURCE_TAG_COLLECTORS = {
    "dynamodb": _collect_dynamodb,''',
        new='''def _pdcase_collect_emr_serverless():
    from ministack.services.emr_serverless import tagged_resources
    return tagged_resources()


_RESOURCE_TAG_COLLECTORS = {
    # pdcase patch emr-serverless-resource-tags
    "emr-serverless": _pdcase_collect_emr_serverless,
    "dynamodb": _collect_dynamodb,''',
    ),
    Patch(
        name="ec2-referenced-security-group",
        file="services/ec2.py",
        why=(
            "EC2 refuses to delete a security group that a rule of another group references "
            "(DependencyViolation, \"resource sg-... has a dependent object\"); the emulator deleted "
            "it, so EMR's managed groups, which reference each other, looked deletable in any order."
        ),
        old='''        if _security_groups[sg_id]["GroupName"] == "default":
            return _error("CannotDelete",
                          f"the specified group: \\"{sg_id}\\" name: \\"default\\" cannot be deleted by a user", 400)
        del _security_groups[sg_id]''',
        new='''        if _security_groups[sg_id]["GroupName"] == "default":
            return _error("CannotDelete",
                          f"the specified group: \\"{sg_id}\\" name: \\"default\\" cannot be deleted by a user", 400)
        # pdcase patch ec2-referenced-security-group
        for _other in _security_groups.values():
            if _other["GroupId"] == sg_id:
                continue
            for _rule in _other.get("IpPermissions", []) + _other.get("IpPermissionsEgress", []):
                if any(_pair.get("GroupId") == sg_id for _pair in _rule.get("UserIdGroupPairs", [])):
                    return _error("DependencyViolation",
                                  f"resource {sg_id} has a dependent object", 400)
        del _security_groups[sg_id]''',
    ),
    Patch(
        name="ec2-security-group-tags",
        file="services/tagging.py",
        why=(
            "`aws:ResourceTag/*` of an EC2 security group is its tags (EMR's managed groups carry "
            "`for-use-with-amazon-emr-managed-policies=true`); the emulator knew no EC2 tags, so "
            "a policy conditioned on them always denied."
        ),
        old='''    # pdcase patch emr-serverless-resource-tags
    "emr-serverless": _pdcase_collect_emr_serverless,''',
        new='''    # pdcase patch emr-serverless-resource-tags
    "emr-serverless": _pdcase_collect_emr_serverless,
    # pdcase patch ec2-security-group-tags
    "ec2": _pdcase_collect_ec2_security_groups,''',
    ),
    Patch(
        name="ec2-security-group-tags-collector",
        file="services/tagging.py",
        why="(with ec2-security-group-tags) the collector.",
        old='''def _pdcase_collect_emr_serverless():''',
        new='''def _pdcase_collect_ec2_security_groups():
    import ministack.services.ec2 as svc
    for sg_id in list(svc._security_groups.keys()):
        arn = f"arn:aws:ec2:{get_region()}:{_account()}:security-group/{sg_id}"
        yield arn, list(svc._tags.get(sg_id, []))


def _pdcase_collect_emr_serverless():''',
    ),
    Patch(
        name="cfn-import-glue-database-bucket-policy",
        file="services/cloudformation/provisioners.py",
        why=(
            "CloudFormation imports an existing `AWS::Glue::Database` (identifier `DatabaseName`) and "
            "`AWS::S3::BucketPolicy` (identifier `Bucket`), as their resource schemas' `primaryIdentifier` "
            "allow; the emulator refused both in an IMPORT change set, so a protected stage's retained "
            "database and bucket policies could not be adopted."
        ),
        old='''        "update_with_logical_id": True,
        "delete": _asg_scheduled_delete,
    },
}''',
        new='''        "update_with_logical_id": True,
        "delete": _asg_scheduled_delete,
    },
}


# pdcase patch cfn-import-glue-database-bucket-policy
def _pdcase_glue_database_import(identifier):
    name = identifier["DatabaseName"]
    if name not in _glue._databases:
        raise ValueError(f"Glue database {name} does not exist")
    return name, {}


def _pdcase_bucket_policy_import(identifier):
    bucket = identifier["Bucket"]
    if bucket not in _s3._bucket_policies:
        raise ValueError(f"bucket {bucket} has no policy")
    return f"{bucket}-policy", {}


_RESOURCE_HANDLERS["AWS::Glue::Database"]["import"] = _pdcase_glue_database_import
_RESOURCE_HANDLERS["AWS::S3::BucketPolicy"]["import"] = _pdcase_bucket_policy_import''',
    ),
    Patch(
        name="glue-database-arn",
        file="core/iam_actions.py",
        why=(
            "Glue's GetDatabase, UpdateDatabase and DeleteDatabase name the database in `Name` and are "
            "authorized on `database/<name>` (Glue developer guide, \"Specifying AWS Glue resource "
            "ARNs\"); the emulator used `table/<name>`, so a policy naming the database was denied."
        ),
        old='''        name = _safe_json_field(body, "Name")
        if name:
            return f"arn:aws:glue:{region}:{account_id}:table/{name}"''',
        new='''        name = _safe_json_field(body, "Name")
        # pdcase patch glue-database-arn
        if name and _op in ("GetDatabase", "UpdateDatabase", "DeleteDatabase"):
            return f"arn:aws:glue:{region}:{account_id}:database/{name}"
        if name:
            return f"arn:aws:glue:{region}:{account_id}:table/{name}"''',
    ),
    Patch(
        name="cloudwatch-describe-alarms-query",
        file="services/cloudwatch.py",
        why=(
            "DescribeAlarms over the Query protocol (what boto3 speaks to CloudWatch) answers each "
            "metric alarm's statistic, period, dimensions and actions, as AWS does (CloudWatch API "
            "reference, MetricAlarm); the emulator's XML left them out (its JSON and CBOR answers "
            "have them), so an alarm's dimension could not be read back."
        ),
        old='''        + f"<StateReason>{a.get('StateReason','')}</StateReason>"
        f"</member>"
        for a in metric_alarms''',
        new='''        + f"<StateReason>{a.get('StateReason','')}</StateReason>"
        # pdcase patch cloudwatch-describe-alarms-query
        + f"<Statistic>{a.get('Statistic') or ''}</Statistic><Period>{a.get('Period', '')}</Period>"
        + "<Dimensions>" + "".join(
            f"<member><Name>{_xml_escape(str(d.get('Name', '')))}</Name><Value>{_xml_escape(str(d.get('Value', '')))}</Value></member>"
            for d in (a.get("Dimensions") or [])) + "</Dimensions>"
        + "<AlarmActions>" + "".join(f"<member>{_xml_escape(str(x))}</member>" for x in (a.get("AlarmActions") or []))
        + "</AlarmActions>"
        + f"</member>"
        for a in metric_alarms''',
    ),
    Patch(
        name="bucket-tags",
        file="services/cloudformation/provisioners.py",
        why=(
            "CloudFormation applies a bucket's `Tags` (GetBucketTagging then returns them); the "
            "emulator dropped them, so a retained bucket did not say which stage it is."
        ),
        old='''    if "NotificationConfiguration" in props:
        _s3_apply_notification(name, props["NotificationConfiguration"])
    _s3_apply_configurations(name, props)
    return name, _s3_attrs(name)''',
        new='''    if "NotificationConfiguration" in props:
        _s3_apply_notification(name, props["NotificationConfiguration"])
    _s3_apply_configurations(name, props)
    # pdcase patch bucket-tags
    if props.get("Tags"):
        _s3._bucket_tags[name] = {t["Key"]: str(t["Value"]) for t in props["Tags"]}
    return name, _s3_attrs(name)''',
    ),
]

# Files installed beside MiniStack's own: the authority module the cfn-* patches call, the
# resource facts it reads (generated by scripts/gen_resource_facts.py), and the EMR Serverless
# service the emr-serverless-* patches route to.
ROOT = Path(__file__).resolve().parent.parent
NEW_FILES = {
    "services/emr_serverless.py": ROOT / "scripts" / "emulator" / "pdcase_emr_serverless.py",
    "services/cloudformation/pdcase_authority.py": ROOT / "scripts" / "emulator" / "pdcase_authority.py",
    "services/cloudformation/pdcase_resource_facts.json": ROOT / "crates" / "stack-model" / "data" / "resource_facts.json",
    "services/cloudformation/pdcase_resource_schemas.json.gz": ROOT / "crates" / "deployer" / "data" / "resource_schemas.json.gz",
}


def main() -> int:
    venv = Path(sys.argv[1])
    packages = sorted(venv.glob("lib/python3*/site-packages/ministack"))
    if len(packages) != 1:
        print(f"patch_emulator: no single ministack package under {venv}", file=sys.stderr)
        return 1
    root = packages[0]
    for target, source in NEW_FILES.items():
        (root / target).write_bytes(source.read_bytes())
        print(f"installed {target}", file=sys.stderr)
    for p in PATCHES:
        path = root / p.file
        text = path.read_text()
        marker = f"pdcase patch {p.name}"
        if marker in text:
            continue
        if text.count(p.old) != 1:
            print(f"patch_emulator: {p.name}: the text to replace is not in {path} exactly once "
                  f"(did the MiniStack pin change?)", file=sys.stderr)
            return 1
        path.write_text(text.replace(p.old, p.new))
        for cached in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
            cached.unlink()
        print(f"patched {p.file}: {p.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
