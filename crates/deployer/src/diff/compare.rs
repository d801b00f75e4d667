//! The semantic comparison of a deployed stage with what the code renders now: resources
//! added, removed and modified (property paths, old -> new), predicted replacements and data
//! at risk, IAM statements that broaden access, and changed artifacts.
//!
//! Both sides are canonical JSON from the same renderer (keys sorted, defaults explicit), so
//! ordering and formatting never show up as changes.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use stack_model::facts::{may_replace, replaces, stateful, type_facts};
use stack_model::guard::Guard;
use stack_model::pipeline::params;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub stage: String,
    pub deployed: bool,
    pub changes: bool,
    pub resources: Vec<ResourceChange>,
    pub code: Vec<CodeChange>,
    /// Logical ids whose replacement or removal would lose data.
    pub data_at_risk: Vec<String>,
    /// How the change lowers the stage's guard ([`stack_model::guard`]): protection,
    /// hardening, log retention. `deploy` refuses it without `--allow-lower-guard`.
    pub guard_lowered: Vec<String>,
    /// CloudFormation's own view (`--changeset`): one entry per resource it would touch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changeset: Option<Vec<ChangeSetEntry>>,
    /// The functions run artifacts a `deploy --hotswap` put there, not the stack's: the
    /// stack's view is out of date until the next full deploy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hotswapped: Option<crate::hotswap_record::Record>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeSetEntry {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False` or `Conditional`, as CloudFormation says.
    pub replacement: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    pub logical_id: String,
    pub resource_type: String,
    /// `add`, `remove` or `modify`.
    pub action: &'static str,
    pub replacement: bool,
    /// The resource schemas do not know the type (`Custom::`, a third-party type, a typo
    /// CloudFormation will refuse): whether a change replaces it is unknown, never "in place".
    pub unknown_type: bool,
    /// A changed property is conditionally create-only: CloudFormation may replace the
    /// resource, by its state (an EMR Serverless application that is not stopped).
    pub may_replace: bool,
    /// Stateful, replaced (or maybe replaced: a conditionally create-only property changed) or
    /// removed, and not retained: its data would, or may, be lost.
    pub data_loss: bool,
    pub properties: Vec<PropertyChange>,
    pub iam: Vec<IamFinding>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PropertyChange {
    pub path: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub replaces: bool,
    /// Conditionally create-only: may replace, by the resource's state.
    pub may_replace: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IamFinding {
    /// `new statement`, `new actions`, `wider resources`, `new principals`.
    pub kind: &'static str,
    pub statement: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CodeChange {
    pub artifact: &'static str,
    pub runs_in: Vec<String>,
    pub old: Option<String>,
    pub new: String,
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string(other).expect("JSON serializes"),
    }
}

/// Leaf differences between two JSON values, as `path -> (old, new)`.
fn walk<'a>(
    path: &str,
    a: Option<&'a Value>,
    b: Option<&'a Value>,
    out: &mut Vec<(String, Option<&'a Value>, Option<&'a Value>)>,
) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}/{k}")
        }
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                walk(&join(k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(&join(&i.to_string()), Some(p), Some(q), out);
            }
        }
        (a, b) if a != b => out.push((path.to_owned(), a, b)),
        _ => {}
    }
}

/// The Allow statements of a role: `(where, statement)` keyed by policy and Sid.
fn statements(role: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let props = &role["Properties"];
    if let Some(list) = props["AssumeRolePolicyDocument"]["Statement"].as_array() {
        for (i, s) in list.iter().enumerate() {
            let sid = s["Sid"]
                .as_str()
                .map_or_else(|| i.to_string(), str::to_owned);
            out.insert(format!("trust/{sid}"), s.clone());
        }
    }
    for p in props["Policies"].as_array().into_iter().flatten() {
        let name = p["PolicyName"].as_str().unwrap_or("?");
        for (i, s) in p["PolicyDocument"]["Statement"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sid = s["Sid"]
                .as_str()
                .map_or_else(|| i.to_string(), str::to_owned);
            out.insert(format!("{name}/{sid}"), s.clone());
        }
    }
    out
}

fn set(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Array(a) => a.iter().map(compact).collect(),
        Value::Null => BTreeSet::new(),
        other => BTreeSet::from([compact(other)]),
    }
}

fn principals(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, x)| set(x).into_iter().map(move |p| format!("{k}:{p}")))
            .collect(),
        other => set(other),
    }
}

/// How the new role's Allow statements broaden the old one's.
fn iam_findings(old: &Value, new: &Value) -> Vec<IamFinding> {
    let (before, after) = (statements(old), statements(new));
    let mut out = Vec::new();
    for (key, s) in &after {
        if s["Effect"] != "Allow" {
            continue;
        }
        let Some(prev) = before.get(key) else {
            out.push(IamFinding {
                kind: "new statement",
                statement: key.clone(),
                detail: format!(
                    "allows {} on {}",
                    set(&s["Action"]).into_iter().collect::<Vec<_>>().join(", "),
                    if s["Resource"].is_null() {
                        principals(&s["Principal"])
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    } else {
                        set(&s["Resource"])
                            .into_iter()
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            });
            continue;
        };
        let added = |f: fn(&Value) -> BTreeSet<String>, field: &str| -> Vec<String> {
            f(&s[field]).difference(&f(&prev[field])).cloned().collect()
        };
        for (kind, field, f) in [
            (
                "new actions",
                "Action",
                set as fn(&Value) -> BTreeSet<String>,
            ),
            ("wider resources", "Resource", set),
            ("new principals", "Principal", principals),
        ] {
            let extra = added(f, field);
            if !extra.is_empty() {
                out.push(IamFinding {
                    kind,
                    statement: key.clone(),
                    detail: extra.join(", "),
                });
            }
        }
    }
    out
}

/// Compares the deployed template and parameters (`None`: not deployed) with the new ones.
pub fn compare(
    stage: &str,
    old: Option<(&Value, &[(String, String)])>,
    new: &Value,
    new_params: &[(String, String)],
) -> Report {
    let empty = Value::Object(Default::default());
    let (old_t, old_p) = old.unwrap_or((&empty, &[]));
    let old_res = old_t["Resources"].as_object().cloned().unwrap_or_default();
    let new_res = new["Resources"].as_object().cloned().unwrap_or_default();
    // Predictions for every type, not only the pipeline's own.
    crate::schemas::register_for(
        old_res
            .values()
            .chain(new_res.values())
            .filter_map(|r| r["Type"].as_str()),
    );
    let ids: BTreeSet<&String> = old_res.keys().chain(new_res.keys()).collect();
    let mut resources = Vec::new();
    for id in ids {
        let (a, b) = (old_res.get(id), new_res.get(id));
        let ty = b
            .or(a)
            .and_then(|r| r["Type"].as_str())
            .unwrap_or("?")
            .to_owned();
        let unknown_type = type_facts(&ty).is_none();
        let change = match (a, b) {
            (None, Some(_)) => ResourceChange {
                logical_id: id.clone(),
                resource_type: ty.clone(),
                action: "add",
                replacement: false,
                unknown_type,
                may_replace: false,
                data_loss: false,
                properties: vec![],
                iam: b.map(|b| iam_findings(&empty, b)).unwrap_or_default(),
            },
            (Some(a), None) => ResourceChange {
                logical_id: id.clone(),
                resource_type: ty.clone(),
                action: "remove",
                replacement: false,
                unknown_type,
                may_replace: false,
                data_loss: stateful(&ty) && !crate::stage_stack::is_retained(&a["DeletionPolicy"]),
                properties: vec![],
                iam: vec![],
            },
            (Some(a), Some(b)) if a != b => {
                let mut leaves = Vec::new();
                walk("", Some(a), Some(b), &mut leaves);
                let type_changed = a["Type"] != b["Type"];
                let properties: Vec<PropertyChange> = leaves
                    .into_iter()
                    .map(|(path, x, y)| {
                        let prop = path.strip_prefix("Properties/");
                        PropertyChange {
                            replaces: prop.is_some_and(|p| replaces(&ty, p)),
                            may_replace: prop.is_some_and(|p| may_replace(&ty, p)),
                            path,
                            old: x.map(compact),
                            new: y.map(compact),
                        }
                    })
                    .collect();
                let replacement = type_changed || properties.iter().any(|p| p.replaces);
                let may_replace = !replacement && properties.iter().any(|p| p.may_replace);
                // Only a property change can replace: `DependsOn` or a policy attribute cannot.
                let props_changed = properties.iter().any(|p| p.path.starts_with("Properties/"));
                ResourceChange {
                    logical_id: id.clone(),
                    resource_type: ty.clone(),
                    action: "modify",
                    replacement,
                    unknown_type: unknown_type && props_changed,
                    may_replace,
                    data_loss: (replacement || may_replace)
                        && stateful(&ty)
                        && a["UpdateReplacePolicy"] != "Retain",
                    properties,
                    iam: if ty == "AWS::IAM::Role" {
                        iam_findings(a, b)
                    } else {
                        vec![]
                    },
                }
            }
            _ => continue,
        };
        resources.push(change);
    }
    let param =
        |ps: &[(String, String)], k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut code = Vec::new();
    for (key, artifact, runs_in) in [
        (
            params::LAMBDA_CODE_KEY,
            "lambda zip",
            vec!["etl", "emr-starter", "table-refresher"],
        ),
        (
            params::SPARK_JOB_KEY,
            "spark job",
            vec!["the EMR starter's job runs"],
        ),
    ] {
        let (o, n) = (param(old_p, key), param(new_params, key));
        if let Some(n) = n {
            if o.as_deref() != Some(n.as_str()) {
                code.push(CodeChange {
                    artifact,
                    runs_in: runs_in.into_iter().map(str::to_owned).collect(),
                    old: o,
                    new: n,
                });
            }
        }
    }
    let data_at_risk = resources
        .iter()
        .filter(|r| r.data_loss)
        .map(|r| r.logical_id.clone())
        .collect();
    let guard_lowered = match old {
        Some((t, _)) => Guard::of(t).lowered_by(&Guard::of(new)),
        None => Vec::new(),
    };
    Report {
        stage: stage.to_owned(),
        deployed: old.is_some(),
        changes: !resources.is_empty() || !code.is_empty(),
        resources,
        code,
        data_at_risk,
        guard_lowered,
        changeset: None,
        hotswapped: None,
    }
}
