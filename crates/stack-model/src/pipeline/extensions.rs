//! The user's part of the stage: the resources and outputs `resources:` adds and the
//! properties `overrides:` sets, applied after every part of the pipeline, and their checks.
//!
//! An added resource gets the stage's tags (`Project`, `Stage`, then `tags:`) where its type
//! takes tags and it does not set the key itself. Overrides apply at render, after everything
//! else (as CDK's `addPropertyOverride`).

use serde_json::{json, Value as Json};

use crate::config::{ConfigError, StageConfig};
use crate::extension::Origin;
use crate::facts;
use crate::template::{RawResource, Template, TemplateError};

/// Adds the stage's extensions to its composed template.
pub(super) fn apply(c: &StageConfig, t: &mut Template, tags: &[(String, String)]) {
    for (id, r) in &c.extensions.resources {
        let mut properties = r.properties.clone();
        if let Some(tagging) = facts::type_facts(&r.type_name).and_then(|f| f.tags.as_ref()) {
            add_tags(&mut properties, &tagging.property, &tagging.form, tags);
        }
        let mut raw = RawResource::new(&r.type_name, Json::Object(properties));
        for (k, v) in &r.keys {
            raw = raw.with_key(k, v.clone());
        }
        t.add_raw(id, raw);
    }
    for (name, o) in &c.extensions.outputs {
        t.raw_output(name, o.body.clone());
    }
    for o in &c.extensions.overrides {
        let path: Vec<&str> = o.path.iter().map(String::as_str).collect();
        t.override_property(&o.id, &path, o.value.clone());
    }
}

/// The stage's tags after those the resource sets itself, in the form its type takes.
fn add_tags(
    properties: &mut serde_json::Map<String, Json>,
    property: &str,
    form: &str,
    tags: &[(String, String)],
) {
    let entry = properties.entry(property.to_string());
    match form {
        "list" => {
            let list = entry.or_insert_with(|| json!([]));
            if let Json::Array(items) = list {
                for (k, v) in tags {
                    if !items.iter().any(|t| t["Key"] == json!(k)) {
                        items.push(json!({"Key": k, "Value": v}));
                    }
                }
            }
        }
        _ => {
            let map = entry.or_insert_with(|| json!({}));
            if let Json::Object(m) = map {
                for (k, v) in tags {
                    m.entry(k.clone()).or_insert_with(|| json!(v));
                }
            }
        }
    }
}

/// How the stage's `overrides:` lower its guard ([`crate::guard`]), one line each: the guard of
/// its template with them against without them (log retention shortened), and every
/// overridden property that used the stage's KMS key and no longer does. `deploy` refuses
/// these as it refuses a deploy that lowers the guard (exit 5, `--allow-lower-guard`).
pub fn guard_lowered(c: &StageConfig) -> Vec<String> {
    if c.extensions.overrides.is_empty() {
        return vec![];
    }
    let mut plain = c.clone();
    plain.extensions.overrides.clear();
    let (Ok(before), Ok(after)) = (
        super::template(&plain).to_json(),
        super::template(c).to_json(),
    ) else {
        return vec![];
    };
    let mut lowered = crate::guard::Guard::of(&before).lowered_by(&crate::guard::Guard::of(&after));
    let keys: Vec<&String> = before["Resources"]
        .as_object()
        .map(|r| {
            r.iter()
                .filter(|(_, v)| v["Type"] == "AWS::KMS::Key")
                .map(|(k, _)| k)
                .collect()
        })
        .unwrap_or_default();
    for o in &c.extensions.overrides {
        let at = |t: &Json| {
            o.path
                .iter()
                .try_fold(&t["Resources"][&o.id]["Properties"], |v, step| match v {
                    Json::Array(a) => step.parse::<usize>().ok().and_then(|i| a.get(i)),
                    other => other.get(step),
                })
                .cloned()
        };
        let (old, new) = (at(&before), at(&after));
        for key in &keys {
            if old.as_ref().is_some_and(|v| mentions(v, key))
                && !new.as_ref().is_some_and(|v| mentions(v, key))
            {
                lowered.push(format!(
                    "`{}` {} no longer uses the stage's KMS key `{key}` (override `{}` in {})",
                    o.id,
                    o.path.join("."),
                    o.origin.key,
                    o.origin.file.display()
                ));
            }
        }
    }
    lowered
}

/// Whether `v` references logical id `id` ([`reference_path`]).
fn mentions(v: &Json, id: &str) -> bool {
    reference_path(v, id).is_some()
}

/// What synth says about the stage's additions: one line per added type whose permissions
/// were not decided by hand.
pub fn notes(c: &StageConfig) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in c.extensions.resources.values() {
        let Some(f) = facts::type_facts(&r.type_name) else {
            continue;
        };
        if f.decided || !seen.insert(r.type_name.clone()) {
            continue;
        }
        let actions: std::collections::BTreeSet<&str> = f
            .handlers
            .values()
            .flatten()
            .map(|a| a.action.as_str())
            .collect();
        out.push(format!(
            "{}: no recorded permission decisions; the CloudFormation role gets every action its schema's handlers list ({} actions), on its own ARN where IAM allows",
            r.type_name,
            actions.len()
        ));
    }
    out
}

/// Checks the stage's extensions against the pipeline and the resource schemas: an added id
/// that clashes with the pipeline's, an unknown type (or one the stage's region lacks), an
/// unknown or read-only property, a required one missing, a reference to nothing, an override
/// of a resource or property that does not exist. Each refusal names the file, line and key.
pub fn check(c: &StageConfig) -> Result<(), ConfigError> {
    if c.extensions.is_empty() {
        return Ok(());
    }
    let mut plain = c.clone();
    plain.extensions = Default::default();
    let pipeline = super::template(&plain);
    let pipeline_json = pipeline
        .to_json()
        .expect("the pipeline's own template renders");
    for (id, r) in &c.extensions.resources {
        let at = &r.origin;
        if pipeline.contains(id) {
            return Err(at.error("", format!("`{id}` is a logical id of the pipeline ({}): choose another id, or change the pipeline's resource under `overrides:`", pipeline.type_of(id).unwrap_or("a parameter"))));
        }
        check_type(&c.region, &r.type_name, at)?;
        let f = facts::type_facts(&r.type_name).expect("checked above");
        check_properties(&r.type_name, f, &r.properties, at, "Properties")?;
        for req in &f.required {
            if !r.properties.contains_key(req) {
                return Err(at.error(
                    "Properties",
                    format!("{} requires the property `{req}`", r.type_name),
                ));
            }
        }
    }
    for name in c.extensions.outputs.keys() {
        if pipeline_json["Outputs"].get(name).is_some() {
            return Err(c.extensions.outputs[name].origin.error(
                "",
                format!("`{name}` is an output of the pipeline: choose another name"),
            ));
        }
    }
    for o in &c.extensions.overrides {
        let Some(ty) = pipeline.type_of(&o.id) else {
            let hint = if c.extensions.resources.contains_key(&o.id) {
                " (it is one of the stage's added resources: change it under `resources:`)"
            } else {
                ""
            };
            return Err(o.origin.error(
                "",
                format!("`{}` is not a resource of the pipeline{hint}", o.id),
            ));
        };
        if let Some(f) = facts::type_facts(ty) {
            let top = &o.path[0];
            if !f.properties.iter().any(|p| p == top) {
                return Err(o.origin.error("", property_problem(ty, f, top)));
            }
        }
    }
    // References, attributes and overrides' paths: the whole template rendered.
    let whole = super::template(c);
    whole.to_json().map_err(|e| refusal(c, e))?;
    Ok(())
}

/// Refuses a type the facts do not know, or one the stage's region lacks.
fn check_type(region: &str, ty: &str, at: &Origin) -> Result<(), ConfigError> {
    match facts::type_facts(ty) {
        None => {
            let nearest = facts::known_types()
                .map(|k| (strsim::damerau_levenshtein(ty, k), k))
                .filter(|(d, _)| *d <= (ty.len() / 4).max(2))
                .min()
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            let source = if facts::all_types_registered() {
                "the resource schemas"
            } else {
                "this build's resource facts (the schema digest of every type was not registered)"
            };
            Err(at.error(
                "Type",
                format!("`{ty}` is not a resource type {source} define{nearest}"),
            ))
        }
        Some(f) if f.absent_in.iter().any(|r| r == region) => Err(at.error(
            "Type",
            format!("CloudFormation does not offer `{ty}` in {region}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Refuses a property the type does not take.
fn check_properties(
    ty: &str,
    f: &facts::TypeFacts,
    properties: &serde_json::Map<String, Json>,
    at: &Origin,
    below: &str,
) -> Result<(), ConfigError> {
    for name in properties.keys() {
        if !f.properties.iter().any(|p| p == name) {
            return Err(at.error(&format!("{below}.{name}"), property_problem(ty, f, name)));
        }
    }
    Ok(())
}

fn property_problem(ty: &str, f: &facts::TypeFacts, name: &str) -> String {
    if f.attributes.iter().any(|a| a == name) {
        return format!("`{name}` of {ty} is read-only: AWS sets it (read it with Fn::GetAtt)");
    }
    let nearest = f
        .properties
        .iter()
        .map(|p| (strsim::damerau_levenshtein(name, p), p))
        .filter(|(d, _)| *d <= (name.len() / 3).max(1))
        .min()
        .map(|(_, p)| format!("; did you mean `{p}`?"))
        .unwrap_or_default();
    format!("{ty} has no property `{name}`{nearest}")
}

/// A render failure of the whole template, named where the user wrote its cause.
fn refusal(c: &StageConfig, e: TemplateError) -> ConfigError {
    let ext = &c.extensions;
    let origin_of = |id: &str| {
        ext.resources
            .get(id)
            .map(|r| &r.origin)
            .or_else(|| ext.outputs.get(id).map(|o| &o.origin))
            .or_else(|| ext.overrides.iter().find(|o| o.id == id).map(|o| &o.origin))
    };
    let from = match &e {
        TemplateError::UnknownReference { from, .. }
        | TemplateError::UnknownAttribute { from, .. }
        | TemplateError::UnknownSubVariable { from, .. } => Some(from.clone()),
        TemplateError::BadOverridePath { id, path, .. } => {
            if let Some(o) = ext
                .overrides
                .iter()
                .find(|o| &o.id == id && &o.path.join(".") == path)
            {
                return o.origin.error("", e.to_string());
            }
            Some(id.clone())
        }
        TemplateError::BadRawResource { id, .. } => Some(id.clone()),
        TemplateError::UnknownOverrideTarget(id) | TemplateError::DuplicateLogicalId(id) => {
            Some(id.clone())
        }
        TemplateError::InvalidLogicalId(_) => None,
    };
    // The property that holds the reference, where an added resource has it.
    let needle = match &e {
        TemplateError::UnknownReference { target, .. }
        | TemplateError::UnknownAttribute { target, .. } => Some(target.clone()),
        TemplateError::UnknownSubVariable { name, .. } => Some(name.clone()),
        _ => None,
    };
    let below = match (&from, &needle) {
        (Some(id), Some(n)) => ext.resources.get(id).and_then(|r| {
            reference_path(&Json::Object(r.properties.clone()), n)
                .map(|p| format!("Properties.{p}"))
        }),
        _ => None,
    };
    match from.as_deref().and_then(origin_of) {
        Some(origin) => origin.error(below.as_deref().unwrap_or(""), e.to_string()),
        None => ConfigError {
            file: ext
                .resources
                .values()
                .map(|r| r.origin.file.clone())
                .next()
                .unwrap_or_default(),
            key: String::new(),
            message: e.to_string(),
            location: None,
        },
    }
}

/// The dotted path below `v` of the first value that references logical id (or `Fn::Sub`
/// variable) `id`: a `Ref`, a `Fn::GetAtt` (either form), or `${id}` / `${id.Attr}` in a
/// `Fn::Sub` text. The path stops at the property: an intrinsic's own key is not one. `Some("")`
/// when `v` itself is the reference.
fn reference_path(v: &Json, id: &str) -> Option<String> {
    let join = |head: String, tail: String| match (head.is_empty(), tail.is_empty()) {
        (true, _) => tail,
        (_, true) => head,
        _ => format!("{head}.{tail}"),
    };
    match v {
        Json::Object(m) => {
            let here = m.get("Ref").is_some_and(|r| r == id)
                || m.get("Fn::GetAtt").is_some_and(|g| {
                    g.get(0).is_some_and(|r| r == id)
                        || g.as_str().is_some_and(|t| t.split('.').next() == Some(id))
                });
            if here {
                return Some(String::new());
            }
            m.iter().find_map(|(k, x)| {
                let intrinsic = k == "Ref" || k.contains("::");
                reference_path(x, id).map(|p| {
                    if intrinsic {
                        String::new()
                    } else {
                        join(k.clone(), p)
                    }
                })
            })
        }
        Json::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, x)| reference_path(x, id).map(|p| join(i.to_string(), p))),
        Json::String(s)
            if s.contains(&format!("${{{id}}}")) || s.contains(&format!("${{{id}.")) =>
        {
            Some(String::new())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extension::{AddedResource, PropertyOverride};
    use crate::stage::StageName;

    fn origin(key: &str) -> Origin {
        Origin {
            file: "pipeline.yaml".into(),
            key: key.into(),
            location: Some((3, 5)),
            inner: Default::default(),
        }
    }

    fn hardened() -> StageConfig {
        let mut c = StageConfig::defaults(StageName::parse("prod").unwrap());
        c.hardened = true;
        c
    }

    fn set(c: &mut StageConfig, id: &str, path: &str, value: Option<Json>) {
        c.extensions.overrides.push(PropertyOverride {
            id: id.into(),
            path: path.split('.').map(String::from).collect(),
            value,
            origin: origin(&format!("stages.prod.overrides.{id}.{path}")),
        });
    }

    #[test]
    fn an_override_that_stops_a_resource_using_the_key_lowers_the_guard() {
        let mut c = hardened();
        assert!(guard_lowered(&c).is_empty());
        set(&mut c, "WarehouseBucket", "BucketEncryption", None);
        let lowered = guard_lowered(&c);
        assert_eq!(lowered.len(), 1, "{lowered:?}");
        assert!(
            lowered[0]
                .contains("`WarehouseBucket` BucketEncryption no longer uses the stage's KMS key"),
            "{lowered:?}"
        );
        // A change that keeps the key is not a lowering.
        let mut c = hardened();
        set(&mut c, "WarehouseBucket", "Tags", Some(json!([])));
        assert!(guard_lowered(&c).is_empty());
    }

    #[test]
    fn an_override_that_shortens_retention_lowers_the_guard() {
        let mut c = StageConfig::defaults(StageName::parse("alice").unwrap());
        set(&mut c, "EtlLogGroup", "RetentionInDays", Some(json!(1)));
        assert_eq!(guard_lowered(&c), ["log retention 30 -> 1 days"]);
    }

    #[test]
    fn added_resources_get_the_stages_tags_in_their_types_form() {
        let mut list = serde_json::Map::new();
        list.insert("Tags".into(), json!([{"Key": "team", "Value": "mine"}]));
        add_tags(
            &mut list,
            "Tags",
            "list",
            &[
                ("Project".into(), "pdcase".into()),
                ("team".into(), "data".into()),
            ],
        );
        // The resource's own value of a key wins.
        assert_eq!(
            list["Tags"],
            json!([{"Key": "team", "Value": "mine"}, {"Key": "Project", "Value": "pdcase"}])
        );
        let mut map = serde_json::Map::new();
        add_tags(
            &mut map,
            "Tags",
            "map",
            &[("Project".into(), "pdcase".into())],
        );
        assert_eq!(map["Tags"], json!({"Project": "pdcase"}));
    }

    #[test]
    fn an_added_resource_renders_after_the_pipeline_and_clashes_are_refused() {
        let mut c = StageConfig::defaults(StageName::parse("alice").unwrap());
        c.extensions.resources.insert(
            "EtlFunction".into(),
            AddedResource {
                type_name: "AWS::SNS::Topic".into(),
                properties: Default::default(),
                keys: Default::default(),
                origin: origin("stages.alice.resources.Resources.EtlFunction"),
            },
        );
        let e = check(&c).unwrap_err();
        assert_eq!(e.key, "stages.alice.resources.Resources.EtlFunction");
        assert_eq!(e.location, Some((3, 5)));
        assert!(e.message.contains("is a logical id of the pipeline"), "{e}");
    }
}
