//! A CloudFormation template: parameters, resources, outputs, and its canonical rendering.
//!
//! Adding a resource returns a [`Handle`]; the handle is the only way to write a `Ref` or a
//! `Fn::GetAtt` of it, and `get_att` takes the type's own attribute enum, so an attribute the
//! type does not have cannot be written:
//!
//! ```compile_fail
//! use stack_model::template::Template;
//! use stack_model::resource::glue::{Database, DatabaseInput};
//! use stack_model::resource::s3::BucketAttr;
//! use stack_model::value::{Pseudo, Value};
//! let mut t = Template::new("x");
//! let db = t.add("Db", Database { catalog_id: Pseudo::AccountId.into(),
//!     database_input: DatabaseInput { name: "d".into(), description: None } });
//! db.get_att(BucketAttr::Arn); // a Glue database has no `Arn` attribute: does not compile
//! ```
//!
//! Rendering checks every reference once more (a handle taken from another template, a
//! `${Name}` in a `Fn::Sub` text, a `DependsOn`) and fails naming the logical id. Output is
//! canonical: keys sorted, so the same template always renders to the same bytes.

use crate::resource::{Attribute, Resource};
use crate::value::{sub_placeholders, Pseudo, Value};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::marker::PhantomData;

/// How a template fails to render.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("logical id `{0}` is declared twice")]
    DuplicateLogicalId(String),
    #[error(
        "logical id `{0}` is invalid: CloudFormation allows 1 to 255 ASCII letters and digits"
    )]
    InvalidLogicalId(String),
    #[error(
        "`{from}` refers to `{target}`, which is not a resource or parameter of this template"
    )]
    UnknownReference { from: String, target: String },
    #[error("`{from}` reads attribute `{attribute}` of `{target}` ({type_name}), which has no such attribute")]
    UnknownAttribute {
        from: String,
        target: String,
        type_name: String,
        attribute: String,
    },
    #[error("`{from}` uses `${{{name}}}` in a Fn::Sub text, which is neither a variable of that Fn::Sub nor a pseudo parameter")]
    UnknownSubVariable { from: String, name: String },
}

/// What to do with a resource's physical resource when CloudFormation deletes or replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RemovalPolicy {
    /// Delete it (CloudFormation's default for most types).
    Delete,
    /// Keep it outside the stack: for data that must survive a teardown or a replacement.
    /// Rendered as `DeletionPolicy: RetainExceptOnCreate` (a resource created by a stack
    /// operation that then rolls back is deleted, so a retried first deploy does not fail on
    /// names the failed one left behind; afterwards it is retained as with `Retain`) and
    /// `UpdateReplacePolicy: Retain` (that attribute has no `RetainExceptOnCreate`).
    Retain,
}

impl RemovalPolicy {
    /// The `DeletionPolicy` attribute's value.
    pub fn deletion_policy(self) -> &'static str {
        match self {
            RemovalPolicy::Delete => "Delete",
            RemovalPolicy::Retain => "RetainExceptOnCreate",
        }
    }

    /// The `UpdateReplacePolicy` attribute's value.
    pub fn update_replace_policy(self) -> &'static str {
        match self {
            RemovalPolicy::Delete => "Delete",
            RemovalPolicy::Retain => "Retain",
        }
    }
}

/// Resource-level options (outside `Properties`).
#[derive(Clone, Debug, Default)]
pub struct Options {
    depends_on: Vec<String>,
    removal: Option<RemovalPolicy>,
}

impl Options {
    /// Create this resource after `other`, where no `Ref`/`GetAtt` already orders them.
    pub fn depends_on<R: Resource>(mut self, other: &Handle<R>) -> Self {
        self.depends_on.push(other.id.clone());
        self
    }

    /// Sets both `DeletionPolicy` and `UpdateReplacePolicy`.
    pub fn removal(mut self, policy: RemovalPolicy) -> Self {
        self.removal = Some(policy);
        self
    }
}

/// A resource declared in a template; the only way to reference it.
pub struct Handle<R: Resource> {
    id: String,
    _type: PhantomData<fn() -> R>,
}

impl<R: Resource> Clone for Handle<R> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id.clone(),
            _type: PhantomData,
        }
    }
}

impl<R: Resource> Handle<R> {
    /// The logical id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `{"Ref": id}`: what it returns depends on the type (documented on each type).
    pub fn r#ref(&self) -> Value {
        Value::Ref(self.id.clone())
    }

    /// `{"Fn::GetAtt": [id, attribute]}`.
    pub fn get_att(&self, attribute: R::Attr) -> Value {
        Value::GetAtt(self.id.clone(), attribute.name())
    }
}

/// A template parameter; the only way to reference it.
#[derive(Clone, Debug)]
pub struct ParameterHandle {
    name: String,
}

impl ParameterHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `{"Ref": name}`: the parameter's value.
    pub fn r#ref(&self) -> Value {
        Value::Ref(self.name.clone())
    }
}

/// A `String` parameter.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u32>,
}

impl Parameter {
    /// A string parameter.
    pub fn string(description: impl Into<String>) -> Parameter {
        Parameter {
            kind: "String",
            description: description.into(),
            allowed_pattern: None,
            constraint_description: None,
            min_length: Some(1),
        }
    }

    /// Restricts the value to a pattern, with the message CloudFormation shows otherwise.
    pub fn pattern(mut self, pattern: &str, explanation: &str) -> Parameter {
        self.allowed_pattern = Some(pattern.to_string());
        self.constraint_description = Some(explanation.to_string());
        self
    }
}

struct Entry {
    type_name: &'static str,
    attributes: Vec<&'static str>,
    properties: Json,
    options: Options,
}

/// A template under construction.
pub struct Template {
    description: String,
    parameters: BTreeMap<String, Parameter>,
    resources: BTreeMap<String, Entry>,
    outputs: BTreeMap<String, (String, Value)>,
    errors: Vec<TemplateError>,
}

/// The text formats a template renders to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Template {
    pub fn new(description: impl Into<String>) -> Template {
        Template {
            description: description.into(),
            parameters: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Declares a resource.
    pub fn add<R: Resource>(&mut self, id: &str, resource: R) -> Handle<R> {
        self.add_with(id, resource, Options::default())
    }

    /// Declares a resource with resource-level options.
    pub fn add_with<R: Resource>(&mut self, id: &str, resource: R, options: Options) -> Handle<R> {
        self.check_new_id(id);
        let properties = serde_json::to_value(&resource)
            .expect("typed resources serialize to JSON: string keys, no non-finite floats");
        self.resources.insert(
            id.to_string(),
            Entry {
                type_name: R::TYPE,
                attributes: R::Attr::all().iter().map(|a| a.name()).collect(),
                properties,
                options,
            },
        );
        Handle {
            id: id.to_string(),
            _type: PhantomData,
        }
    }

    /// Declares a parameter.
    pub fn parameter(&mut self, name: &str, parameter: Parameter) -> ParameterHandle {
        self.check_new_id(name);
        self.parameters.insert(name.to_string(), parameter);
        ParameterHandle {
            name: name.to_string(),
        }
    }

    /// Declares an output.
    pub fn output(&mut self, name: &str, description: impl Into<String>, value: Value) {
        if !valid_logical_id(name) {
            self.errors
                .push(TemplateError::InvalidLogicalId(name.to_string()));
        }
        if self
            .outputs
            .insert(name.to_string(), (description.into(), value))
            .is_some()
        {
            self.errors
                .push(TemplateError::DuplicateLogicalId(name.to_string()));
        }
    }

    fn check_new_id(&mut self, id: &str) {
        if !valid_logical_id(id) {
            self.errors
                .push(TemplateError::InvalidLogicalId(id.to_string()));
        }
        if self.resources.contains_key(id) || self.parameters.contains_key(id) {
            self.errors
                .push(TemplateError::DuplicateLogicalId(id.to_string()));
        }
    }

    /// Logical ids and types of the declared resources, sorted by id.
    pub fn resource_types(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.resources
            .iter()
            .map(|(id, e)| (id.as_str(), e.type_name))
    }

    /// The template as a JSON value, after checking every reference.
    pub fn to_json(&self) -> Result<Json, TemplateError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        let mut resources = Map::new();
        for (id, entry) in &self.resources {
            self.check_references(id, &entry.properties)?;
            let mut body = Map::new();
            body.insert("Type".into(), json!(entry.type_name));
            if entry.properties.as_object().is_some_and(|p| !p.is_empty()) {
                body.insert("Properties".into(), entry.properties.clone());
            }
            if !entry.options.depends_on.is_empty() {
                for target in &entry.options.depends_on {
                    if !self.resources.contains_key(target) {
                        return Err(TemplateError::UnknownReference {
                            from: id.clone(),
                            target: target.clone(),
                        });
                    }
                }
                body.insert("DependsOn".into(), json!(entry.options.depends_on));
            }
            if let Some(policy) = entry.options.removal {
                body.insert("DeletionPolicy".into(), json!(policy.deletion_policy()));
                body.insert(
                    "UpdateReplacePolicy".into(),
                    json!(policy.update_replace_policy()),
                );
            }
            resources.insert(id.clone(), Json::Object(body));
        }
        let mut outputs = Map::new();
        for (name, (description, value)) in &self.outputs {
            let value = serde_json::to_value(value).expect("values serialize");
            self.check_references(name, &value)?;
            outputs.insert(
                name.clone(),
                json!({"Description": description, "Value": value}),
            );
        }
        let mut root = Map::new();
        root.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        root.insert("Description".into(), json!(self.description));
        if !self.parameters.is_empty() {
            root.insert(
                "Parameters".into(),
                serde_json::to_value(&self.parameters).expect("parameters serialize"),
            );
        }
        root.insert("Resources".into(), Json::Object(resources));
        if !outputs.is_empty() {
            root.insert("Outputs".into(), Json::Object(outputs));
        }
        Ok(Json::Object(root))
    }

    /// Renders the template as canonical text: keys sorted, two-space indent, a final newline.
    pub fn render(&self, format: Format) -> Result<String, TemplateError> {
        let value = self.to_json()?;
        Ok(match format {
            Format::Json => {
                let mut s = serde_json::to_string_pretty(&value).expect("JSON values serialize");
                s.push('\n');
                s
            }
            // The long form of intrinsics (`Fn::GetAtt`) is rendered: short tags (`!GetAtt`) do
            // not survive a serde round trip.
            Format::Yaml => crate::yaml::to_string(&value),
        })
    }

    /// Walks a rendered value and checks its `Ref`, `Fn::GetAtt` and `Fn::Sub` targets.
    fn check_references(&self, from: &str, value: &Json) -> Result<(), TemplateError> {
        match value {
            Json::Array(items) => items
                .iter()
                .try_for_each(|v| self.check_references(from, v)),
            Json::Object(map) => {
                if map.len() == 1 {
                    if let Some(Json::String(target)) = map.get("Ref") {
                        return self.check_ref(from, target);
                    }
                    if let Some(Json::Array(args)) = map.get("Fn::GetAtt") {
                        if let [Json::String(target), Json::String(attr)] = args.as_slice() {
                            return self.check_get_att(from, target, attr);
                        }
                    }
                    if let Some(sub) = map.get("Fn::Sub") {
                        return self.check_sub(from, sub);
                    }
                }
                map.values()
                    .try_for_each(|v| self.check_references(from, v))
            }
            _ => Ok(()),
        }
    }

    fn check_ref(&self, from: &str, target: &str) -> Result<(), TemplateError> {
        let known = self.resources.contains_key(target)
            || self.parameters.contains_key(target)
            || Pseudo::ALL.iter().any(|p| p.name() == target);
        if known {
            Ok(())
        } else {
            Err(TemplateError::UnknownReference {
                from: from.to_string(),
                target: target.to_string(),
            })
        }
    }

    fn check_get_att(&self, from: &str, target: &str, attr: &str) -> Result<(), TemplateError> {
        let entry = self
            .resources
            .get(target)
            .ok_or_else(|| TemplateError::UnknownReference {
                from: from.to_string(),
                target: target.to_string(),
            })?;
        if entry.attributes.contains(&attr) {
            Ok(())
        } else {
            Err(TemplateError::UnknownAttribute {
                from: from.to_string(),
                target: target.to_string(),
                type_name: entry.type_name.to_string(),
                attribute: attr.to_string(),
            })
        }
    }

    fn check_sub(&self, from: &str, sub: &Json) -> Result<(), TemplateError> {
        let (text, vars) = match sub {
            Json::String(text) => (text.as_str(), None),
            Json::Array(args) => match args.as_slice() {
                [Json::String(text), Json::Object(vars)] => (text.as_str(), Some(vars)),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        for name in sub_placeholders(text) {
            let declared = vars.is_some_and(|v| v.contains_key(name))
                || Pseudo::ALL.iter().any(|p| p.name() == name);
            if !declared {
                return Err(TemplateError::UnknownSubVariable {
                    from: from.to_string(),
                    name: name.to_string(),
                });
            }
        }
        if let Some(vars) = vars {
            vars.values()
                .try_for_each(|v| self.check_references(from, v))?;
        }
        Ok(())
    }
}

fn valid_logical_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::logs::{LogGroup, LogGroupAttr, Retention};
    use crate::resource::sns::Topic;

    fn log_group() -> LogGroup {
        LogGroup {
            log_group_name: Some("/x".into()),
            retention_in_days: Some(Retention::Days7),
            kms_key_id: None,
            tags: vec![],
        }
    }

    #[test]
    fn handle_from_another_template_fails_with_the_id_named() {
        let mut other = Template::new("other");
        let foreign = other.add("Foreign", log_group());
        let mut t = Template::new("t");
        t.output("Out", "d", foreign.get_att(LogGroupAttr::Arn));
        let err = t.to_json().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`Out` refers to `Foreign`, which is not a resource or parameter of this template"
        );
    }

    #[test]
    fn getatt_of_a_same_named_resource_of_another_type_fails() {
        let mut other = Template::new("other");
        let lg = other.add("Thing", log_group());
        let mut t = Template::new("t");
        t.add("Thing", Topic::default());
        t.output("Out", "d", lg.get_att(LogGroupAttr::Arn));
        assert!(matches!(
            t.to_json().unwrap_err(),
            TemplateError::UnknownAttribute { ref target, ref attribute, .. } if target == "Thing" && attribute == "Arn"
        ));
    }

    #[test]
    fn undeclared_sub_variable_fails() {
        let mut t = Template::new("t");
        t.output("Out", "d", Value::sub("${AWS::Region}-${Missing}"));
        assert_eq!(
            t.to_json().unwrap_err(),
            TemplateError::UnknownSubVariable {
                from: "Out".into(),
                name: "Missing".into()
            }
        );
    }

    #[test]
    fn duplicate_and_invalid_ids_fail() {
        let mut t = Template::new("t");
        t.add("A", log_group());
        t.add("A", log_group());
        assert_eq!(
            t.to_json().unwrap_err(),
            TemplateError::DuplicateLogicalId("A".into())
        );
        let mut t = Template::new("t");
        t.add("has-hyphen", log_group());
        assert_eq!(
            t.to_json().unwrap_err(),
            TemplateError::InvalidLogicalId("has-hyphen".into())
        );
    }

    #[test]
    fn depends_on_and_removal_policy_render() {
        let mut t = Template::new("t");
        let a = t.add("A", log_group());
        t.add_with(
            "B",
            log_group(),
            Options::default()
                .depends_on(&a)
                .removal(RemovalPolicy::Retain),
        );
        let v = t.to_json().unwrap();
        assert_eq!(v["Resources"]["B"]["DependsOn"], json!(["A"]));
        assert_eq!(
            v["Resources"]["B"]["DeletionPolicy"],
            json!("RetainExceptOnCreate")
        );
        assert_eq!(v["Resources"]["B"]["UpdateReplacePolicy"], json!("Retain"));
        assert!(v["Resources"]["A"].get("DeletionPolicy").is_none());
    }
}
