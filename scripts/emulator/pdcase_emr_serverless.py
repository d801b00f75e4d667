"""EMR Serverless for the local emulator (installed as ministack/services/emr_serverless.py by
scripts/patch_emulator.py; MiniStack 1.5.33 has no such service).

REST/JSON, as the SDKs send it (botocore's emr-serverless model):
  applications: CreateApplication, GetApplication, ListApplications, UpdateApplication,
                DeleteApplication, StartApplication, StopApplication
  job runs:     StartJobRun, GetJobRun, ListJobRuns, CancelJobRun
  tags:         TagResource, UntagResource, ListTagsForResource

What it does as EMR Serverless does (EMR Serverless user guide, "Application states" and "Job
run states"; API reference): an application is CREATED, starts for a job run when auto-start
is on (and refuses the run when it is off and the application is not STARTED), stops itself
after its auto-stop idle time, cannot be updated or deleted unless CREATED or STOPPED, and
cannot be stopped while a job run is scheduled or running. A job run records its entry point,
arguments, execution role and log location; a client token already used on the application
returns the run it started. Every call is authorized by MiniStack's IAM enforcement on the
application's or run's ARN (scripts/patch_emulator.py maps them).

What it does not do: run the job. A run is SUBMITTED, then RUNNING, and SUCCESS after
PDCASE_EMR_SERVERLESS_RUN_SECONDS (default 1) with the state detail saying nothing ran; it
reads and writes no S3 object and writes no log. Tests that need a driver's output seed it
where EMR Serverless writes it.
"""

import copy
import json
import os
import re
import time
from urllib.parse import unquote

from ministack.core.responses import (
    AccountRegionScopedDict,
    AccountScopedDict,
    get_account_id,
    get_region,
    new_uuid,
)

_applications = AccountRegionScopedDict()  # application id -> record
_job_runs = AccountRegionScopedDict()  # application id -> {job run id -> record}
_tokens = AccountRegionScopedDict()  # "application id/client token" -> job run id
_tags = AccountScopedDict()  # ARN -> {key: value}

_ACTIVE = ("SUBMITTED", "PENDING", "SCHEDULED", "RUNNING", "QUEUED")


def reset():
    _applications.clear()
    _job_runs.clear()
    _tokens.clear()
    _tags.clear()


def get_state():
    return {
        "applications": copy.deepcopy(_applications),
        "job_runs": copy.deepcopy(_job_runs),
        "tokens": copy.deepcopy(_tokens),
        "tags": copy.deepcopy(_tags),
    }


def load_persisted_state(data):
    _applications.update(data.get("applications", {}))
    _job_runs.update(data.get("job_runs", {}))
    _tokens.update(data.get("tokens", {}))
    _tags.update(data.get("tags", {}))


def _run_seconds():
    return float(os.environ.get("PDCASE_EMR_SERVERLESS_RUN_SECONDS", "1"))


def _id():
    # EMR Serverless ids: 16 lowercase alphanumerics starting with `00`.
    return "00" + new_uuid().replace("-", "")[:14]


def application_arn(app_id):
    return f"arn:aws:emr-serverless:{get_region()}:{get_account_id()}:/applications/{app_id}"


def _job_run_arn(app_id, run_id):
    return f"{application_arn(app_id)}/jobruns/{run_id}"


def _json(status, body):
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _error(status, code, message):
    return status, {"Content-Type": "application/json", "x-amzn-errortype": code}, json.dumps(
        {"__type": code, "message": message}).encode()


def _not_found(what):
    return _error(404, "ResourceNotFoundException", f"{what} does not exist")


def _conflict(message):
    # EMR Serverless answers a call the application's state forbids with a 400
    # ValidationException naming the state.
    return _error(400, "ValidationException", message)


# --- state that moves with time ----------------------------------------------------------

def _run_state(run, now=None):
    """A run's state now: SUBMITTED, RUNNING, then SUCCESS after the configured time."""
    if run["state"] not in _ACTIVE:
        return run["state"]
    now = now or time.time()
    age = now - run["createdAt"]
    if age >= _run_seconds():
        run["state"] = "SUCCESS"
        run["stateDetails"] = "emulated run: the emulator runs no job"
        run["updatedAt"] = run["endedAt"] = run["createdAt"] + _run_seconds()
        app = _applications.get(run["applicationId"])
        if app:
            app["lastActivity"] = max(app.get("lastActivity", 0), run["endedAt"])
    elif age > 0:
        run["state"] = "RUNNING"
    return run["state"]


def _active_runs(app_id):
    return [r for r in _job_runs.get(app_id, {}).values() if _run_state(r) in _ACTIVE]


def _app_state(app):
    """Auto-stop: a STARTED application without active runs stops after its idle time."""
    if app["state"] == "STARTED" and not _active_runs(app["applicationId"]):
        stop = app.get("autoStopConfiguration") or {"enabled": True, "idleTimeoutMinutes": 15}
        idle = stop.get("idleTimeoutMinutes", 15) * 60
        if stop.get("enabled", True) and time.time() - app.get("lastActivity", app["updatedAt"]) >= idle:
            app["state"] = "STOPPED"
            app["updatedAt"] = time.time()
    return app["state"]


def _view(app):
    _app_state(app)
    out = {k: v for k, v in app.items() if k != "lastActivity"}
    out["tags"] = dict(_tags.get(app["arn"], {}))
    return out


def _run_view(run):
    _run_state(run)
    out = dict(run)
    out["tags"] = dict(_tags.get(run["arn"], {}))
    return out


# --- applications ------------------------------------------------------------------------

_SETTINGS = ("releaseLabel", "initialCapacity", "maximumCapacity", "autoStartConfiguration",
             "autoStopConfiguration", "networkConfiguration", "architecture", "imageConfiguration",
             "workerTypeSpecifications", "runtimeConfiguration", "monitoringConfiguration",
             "interactiveConfiguration", "schedulerConfiguration")


def create_application(body):
    for field in ("releaseLabel", "type"):
        if not body.get(field):
            return _error(400, "ValidationException", f"{field} is required")
    app_id = _id()
    now = time.time()
    app = {
        "applicationId": app_id,
        "name": body.get("name", app_id),
        "arn": application_arn(app_id),
        "type": body["type"].upper() if body["type"].lower() in ("spark", "hive") else body["type"],
        "state": "CREATED",
        "stateDetails": "",
        "createdAt": now,
        "updatedAt": now,
        "autoStartConfiguration": {"enabled": True},
        "autoStopConfiguration": {"enabled": True, "idleTimeoutMinutes": 15},
        "architecture": "X86_64",
    }
    for key in _SETTINGS:
        if key in body:
            app[key] = body[key]
    _applications[app_id] = app
    _job_runs[app_id] = {}
    if body.get("tags"):
        _tags[app["arn"]] = dict(body["tags"])
    return _json(200, {"applicationId": app_id, "name": app["name"], "arn": app["arn"]})


def get_application(app_id):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    return _json(200, {"application": _view(app)})


def list_applications(query):
    states = query.get("states") or []
    out = []
    for app in _applications.values():
        state = _app_state(app)
        if states and state not in states:
            continue
        out.append({k: app[k] for k in ("id", "name", "arn", "releaseLabel", "type", "state",
                                        "createdAt", "updatedAt", "architecture")
                    if k in app} | {"id": app["applicationId"]})
    return _json(200, {"applications": out})


def update_application(app_id, body):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    state = _app_state(app)
    if state not in ("CREATED", "STOPPED"):
        return _conflict(f"Application {app_id} is in {state} state; it can be updated only when CREATED or STOPPED")
    for key in _SETTINGS:
        if key in body:
            app[key] = body[key]
    app["updatedAt"] = time.time()
    return _json(200, {"application": _view(app)})


def delete_application(app_id):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    state = _app_state(app)
    if state not in ("CREATED", "STOPPED"):
        return _conflict(f"Application {app_id} is in {state} state; it can be deleted only when CREATED or STOPPED")
    del _applications[app_id]
    for run in _job_runs.pop(app_id, {}).values():
        _tags.pop(run["arn"], None)
    _tags.pop(app["arn"], None)
    return _json(200, {})


def start_application(app_id):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    if _app_state(app) != "STARTED":
        app["state"] = "STARTED"
        app["updatedAt"] = app["lastActivity"] = time.time()
    return _json(200, {})


def stop_application(app_id):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    active = _active_runs(app_id)
    if active:
        return _conflict(
            f"Application {app_id} has {len(active)} job run(s) scheduled or running; "
            "they must complete or be cancelled before it stops")
    app["state"] = "STOPPED"
    app["updatedAt"] = time.time()
    return _json(200, {})


# --- job runs ----------------------------------------------------------------------------

def start_job_run(app_id, body):
    app = _applications.get(app_id)
    if not app:
        return _not_found(f"Application {app_id}")
    for field in ("clientToken", "executionRoleArn"):
        if not body.get(field):
            return _error(400, "ValidationException", f"{field} is required")
    token_key = f"{app_id}/{body['clientToken']}"
    if token_key in _tokens:
        run = _job_runs[app_id][_tokens[token_key]]
        return _json(200, {"applicationId": app_id, "jobRunId": run["jobRunId"], "arn": run["arn"]})
    state = _app_state(app)
    if state != "STARTED":
        if not (app.get("autoStartConfiguration") or {}).get("enabled", True):
            return _conflict(f"Application {app_id} is in {state} state and auto-start is off")
        app["state"] = "STARTED"
    now = time.time()
    run_id = _id()
    run = {
        "applicationId": app_id,
        "jobRunId": run_id,
        "name": body.get("name", ""),
        "arn": _job_run_arn(app_id, run_id),
        "createdBy": f"arn:aws:iam::{get_account_id()}:root",
        "createdAt": now,
        "updatedAt": now,
        "executionRole": body["executionRoleArn"],
        "state": "SUBMITTED",
        "stateDetails": "",
        "releaseLabel": app.get("releaseLabel", ""),
        "jobDriver": body.get("jobDriver", {}),
        "configurationOverrides": body.get("configurationOverrides") or {
            "monitoringConfiguration": app.get("monitoringConfiguration", {})},
        "mode": body.get("mode", "BATCH"),
        "attempt": 1,
    }
    if "executionTimeoutMinutes" in body:
        run["executionTimeoutMinutes"] = body["executionTimeoutMinutes"]
    if app.get("networkConfiguration"):
        run["networkConfiguration"] = app["networkConfiguration"]
    _job_runs.setdefault(app_id, {})[run_id] = run
    _tokens[token_key] = run_id
    app["lastActivity"] = now
    if body.get("tags"):
        _tags[run["arn"]] = dict(body["tags"])
    return _json(200, {"applicationId": app_id, "jobRunId": run_id, "arn": run["arn"]})


def get_job_run(app_id, run_id):
    run = _job_runs.get(app_id, {}).get(run_id)
    if not run:
        return _not_found(f"Job run {run_id} of application {app_id}")
    return _json(200, {"jobRun": _run_view(run)})


def list_job_runs(app_id, query):
    if app_id not in _applications:
        return _not_found(f"Application {app_id}")
    states = query.get("states") or []
    out = []
    for run in sorted(_job_runs.get(app_id, {}).values(), key=lambda r: -r["createdAt"]):
        state = _run_state(run)
        if states and state not in states:
            continue
        out.append({
            "applicationId": app_id, "id": run["jobRunId"], "name": run["name"], "arn": run["arn"],
            "createdBy": run["createdBy"], "createdAt": run["createdAt"], "updatedAt": run["updatedAt"],
            "executionRole": run["executionRole"], "state": state, "stateDetails": run["stateDetails"],
            "releaseLabel": run["releaseLabel"], "mode": run["mode"], "attempt": run["attempt"],
        })
    return _json(200, {"jobRuns": out})


def cancel_job_run(app_id, run_id):
    run = _job_runs.get(app_id, {}).get(run_id)
    if not run:
        return _not_found(f"Job run {run_id} of application {app_id}")
    if _run_state(run) in _ACTIVE:
        run["state"] = "CANCELLED"
        run["stateDetails"] = "cancelled by CancelJobRun"
        run["updatedAt"] = run["endedAt"] = time.time()
        _applications[app_id]["lastActivity"] = run["endedAt"]
    return _json(200, {"applicationId": app_id, "jobRunId": run_id})


# --- tags --------------------------------------------------------------------------------

def _tag_target(arn):
    m = re.fullmatch(r"arn:[^:]+:emr-serverless:[^:]*:\d+:/applications/([^/]+)(?:/jobruns/([^/]+))?", arn)
    if not m:
        return None
    app_id, run_id = m.groups()
    if app_id not in _applications:
        return None
    if run_id and run_id not in _job_runs.get(app_id, {}):
        return None
    return arn


def tagged_resources():
    """(ARN, [{"Key", "Value"}]) of every application and job run, for `aws:ResourceTag/*`."""
    for app_id, app in _applications.items():
        yield app["arn"], [{"Key": k, "Value": v} for k, v in _tags.get(app["arn"], {}).items()]
        for run in _job_runs.get(app_id, {}).values():
            yield run["arn"], [{"Key": k, "Value": v} for k, v in _tags.get(run["arn"], {}).items()]


# --- routing -----------------------------------------------------------------------------

async def handle_request(method, path, headers, body_bytes, query_params):
    try:
        body = json.loads(body_bytes) if body_bytes else {}
    except json.JSONDecodeError:
        return _error(400, "ValidationException", "the request body is not JSON")
    query = {}
    for k, v in query_params.items():
        values = v if isinstance(v, list) else [v]
        query[k] = values if k == "states" else values[0]

    if path.startswith("/tags/"):
        arn = unquote(path[len("/tags/"):])
        if not _tag_target(arn):
            return _not_found(f"Resource {arn}")
        if method == "GET":
            return _json(200, {"tags": dict(_tags.get(arn, {}))})
        if method == "POST":
            _tags.setdefault(arn, {}).update(body.get("tags", {}))
            return _json(200, {})
        if method == "DELETE":
            keys = query_params.get("tagKeys", [])
            keys = keys if isinstance(keys, list) else [keys]
            for k in keys:
                _tags.get(arn, {}).pop(k, None)
            return _json(200, {})

    parts = [unquote(p) for p in path.split("/") if p]
    if parts[:1] != ["applications"]:
        return _error(400, "ValidationException", f"No route for {method} {path}")
    if len(parts) == 1:
        if method == "POST":
            return create_application(body)
        if method == "GET":
            return list_applications(query)
    app_id = parts[1] if len(parts) > 1 else ""
    if len(parts) == 2:
        if method == "GET":
            return get_application(app_id)
        if method == "PATCH":
            return update_application(app_id, body)
        if method == "DELETE":
            return delete_application(app_id)
    if len(parts) == 3 and method == "POST" and parts[2] == "start":
        return start_application(app_id)
    if len(parts) == 3 and method == "POST" and parts[2] == "stop":
        return stop_application(app_id)
    if len(parts) == 3 and parts[2] == "jobruns":
        if method == "POST":
            return start_job_run(app_id, body)
        if method == "GET":
            return list_job_runs(app_id, query)
    if len(parts) == 4 and parts[2] == "jobruns":
        if method == "GET":
            return get_job_run(app_id, parts[3])
        if method == "DELETE":
            return cancel_job_run(app_id, parts[3])
    return _error(400, "ValidationException", f"No route for {method} {path}")


def resource_arn(method, path, region, account_id):
    """The ARN IAM authorizes a request on (service authorization reference, "Actions defined
    by Amazon EMR Serverless"): the application, or the job run for GetJobRun and
    CancelJobRun; `*` for CreateApplication and ListApplications."""
    if path.startswith("/tags/"):
        return unquote(path[len("/tags/"):])
    parts = [unquote(p) for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] != "applications":
        return "*"
    base = f"arn:aws:emr-serverless:{region}:{account_id}:/applications/{parts[1]}"
    if len(parts) == 4 and parts[2] == "jobruns":
        return f"{base}/jobruns/{parts[3]}"
    return base


# --- CloudFormation: AWS::EMRServerless::Application ------------------------------------

def _cfn_body(props):
    """The CreateApplication/UpdateApplication body of a template's properties (PascalCase to
    the API's camelCase, recursively; capacities keep their text)."""
    def camel(v):
        if isinstance(v, dict):
            return {k[:1].lower() + k[1:]: camel(x) for k, x in v.items()}
        if isinstance(v, list):
            return [camel(x) for x in v]
        return v
    body = camel({k: v for k, v in props.items() if k not in ("Tags",)})
    if "Tags" in props:
        body["tags"] = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
    return body


def cfn_create(logical_id, props, stack_name):
    status, _, out = create_application(_cfn_body(props))
    data = json.loads(out)
    if status != 200:
        raise ValueError(data.get("message", "CreateApplication failed"))
    return data["applicationId"], {"ApplicationId": data["applicationId"], "Arn": data["arn"]}


def cfn_update(physical_id, old_props, new_props, stack_name, logical_id=None):
    """Name and Type replace; the other settings change in place only while the application
    is CREATED or STOPPED (CloudFormation's handler fails otherwise)."""
    if old_props.get("Name") != new_props.get("Name") or old_props.get("Type") != new_props.get("Type"):
        new_id, attrs = cfn_create(logical_id, new_props, stack_name)
        return new_id, attrs
    body = _cfn_body(new_props)
    tags = body.pop("tags", {})
    status, _, out = update_application(physical_id, body)
    if status != 200:
        raise ValueError(json.loads(out).get("message", "UpdateApplication failed"))
    app = _applications[physical_id]
    _tags[app["arn"]] = dict(tags)
    return physical_id, {"ApplicationId": physical_id, "Arn": app["arn"]}


def cfn_delete(physical_id, props):
    if physical_id not in _applications:
        return
    status, _, out = delete_application(physical_id)
    if status != 200:
        raise ValueError(json.loads(out).get("message", "DeleteApplication failed"))
