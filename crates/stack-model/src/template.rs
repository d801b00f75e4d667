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
use crate::value::{sub_placeholders, Pseudo, Target, Value};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;
use std::marker::PhantomData;

/// How a template fails to render.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    /// Two resources, parameters or outputs share a logical id.
    #[error("logical id `{0}` is declared twice")]
    DuplicateLogicalId(String),
    #[error(
        "logical id `{0}` is invalid: CloudFormation allows 1 to 255 ASCII letters and digits"
    )]
    /// A logical id CloudFormation refuses.
    InvalidLogicalId(String),
    #[error(
        "`{from}` refers to `{target}`, which is not a resource or parameter of this template"
    )]
    /// A `Ref`, `Fn::GetAtt` or `DependsOn` names nothing the template declares.
    UnknownReference {
        /// Where the reference is.
        from: String,
        /// What it names.
        target: String,
    },
    #[error("`{from}` reads attribute `{attribute}` of `{target}` ({type_name}), which has no such attribute")]
    /// A `Fn::GetAtt` reads an attribute its target's type does not have.
    UnknownAttribute {
        /// Where the reference is.
        from: String,
        /// The resource it reads.
        target: String,
        /// That resource's type.
        type_name: String,
        /// The attribute.
        attribute: String,
    },
    #[error("`{from}` uses `${{{name}}}` in a Fn::Sub text, which is neither a variable of that Fn::Sub nor a pseudo parameter")]
    /// A `${Name}` of a `Fn::Sub` text that is neither its variable nor a pseudo parameter.
    UnknownSubVariable {
        /// Where the `Fn::Sub` is.
        from: String,
        /// The name.
        name: String,
    },
    #[error("an override names `{0}`, which is not a resource of this template")]
    /// A property override names a resource the template does not declare.
    UnknownOverrideTarget(String),
    #[error("the override of `{id}` at `{path}` cannot apply: {reason}")]
    /// A property override's path goes through a value that is not a mapping or list.
    BadOverridePath {
        /// The resource.
        id: String,
        /// The path, `.` between keys.
        path: String,
        /// Why it cannot apply.
        reason: String,
    },
    #[error("raw resource `{id}`: {reason}")]
    /// A raw resource's properties or keys are not what a template takes.
    BadRawResource {
        /// The resource.
        id: String,
        /// What is wrong.
        reason: String,
    },
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
        Value::Ref(Target::new(&self.id))
    }

    /// `{"Fn::GetAtt": [id, attribute]}`.
    pub fn get_att(&self, attribute: R::Attr) -> Value {
        Value::GetAtt(Target::new(&self.id), attribute.name().to_string())
    }
}

/// A template parameter; the only way to reference it.
#[derive(Clone, Debug)]
pub struct ParameterHandle {
    name: String,
}

impl ParameterHandle {
    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `{"Ref": name}`: the parameter's value.
    pub fn r#ref(&self) -> Value {
        Value::Ref(Target::new(&self.name))
    }
}

/// A `String` parameter.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    /// `Type` (`String`).
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// `Description`.
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `AllowedPattern`: a regular expression the value must match.
    pub allowed_pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `ConstraintDescription`: what CloudFormation says when the pattern does not match.
    pub constraint_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `MinLength`.
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
    type_name: String,
    /// The typed resource's attributes; `None` for a raw resource: the schema facts'
    /// ([`crate::facts::TypeFacts::attributes`]), any where the facts do not know the type.
    attributes: Option<Vec<&'static str>>,
    properties: Json,
    options: Options,
    /// A raw resource's own resource-level keys (`DependsOn`, `DeletionPolicy`,
    /// `UpdateReplacePolicy`, `Metadata`), rendered as given.
    raw_keys: Map<String, Json>,
}

/// A resource given by its type name and JSON properties, for a type this crate has no struct
/// for (CDK's `CfnResource`). Its references are checked at render as a typed resource's are,
/// and `deployer` checks its type and properties against the resource schemas.
///
/// ```
/// use stack_model::template::{RawResource, Template};
/// use serde_json::json;
/// let mut t = Template::new("a table");
/// let table = t.add_raw("Usage", RawResource::new("AWS::DynamoDB::Table", json!({
///     "BillingMode": "PAY_PER_REQUEST",
///     "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
///     "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
/// })));
/// t.output("UsageTable", "the table's name", table.r#ref());
/// let v = t.to_json().unwrap();
/// assert_eq!(v["Resources"]["Usage"]["Type"], "AWS::DynamoDB::Table");
/// assert_eq!(v["Outputs"]["UsageTable"]["Value"], json!({"Ref": "Usage"}));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RawResource {
    type_name: String,
    properties: Json,
    keys: Map<String, Json>,
}

impl RawResource {
    /// A resource of `type_name` (such as `AWS::DynamoDB::Table`) with these properties (a
    /// JSON object; `null` for none).
    pub fn new(type_name: impl Into<String>, properties: Json) -> RawResource {
        RawResource {
            type_name: type_name.into(),
            properties,
            keys: Map::new(),
        }
    }

    /// Sets a resource-level key: `DependsOn`, `DeletionPolicy`, `UpdateReplacePolicy` or
    /// `Metadata` (others are refused at render).
    pub fn with_key(mut self, key: &str, value: Json) -> RawResource {
        self.keys.insert(key.to_string(), value);
        self
    }

    /// The type name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

/// The resource-level keys a raw resource may carry besides `Type` and `Properties`.
pub const RAW_RESOURCE_KEYS: [&str; 4] = [
    "DependsOn",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "Metadata",
];

/// A raw resource declared in a template: references it by logical id, with attributes named
/// as text (checked at render against the type's schema facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawHandle {
    id: String,
}

impl RawHandle {
    /// The logical id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `{"Ref": id}`.
    pub fn r#ref(&self) -> Value {
        Value::Ref(Target::new(&self.id))
    }

    /// `{"Fn::GetAtt": [id, attribute]}`; an attribute the type's schema does not list fails
    /// at render, naming both.
    pub fn get_att(&self, attribute: &str) -> Value {
        Value::GetAtt(Target::new(&self.id), attribute.to_string())
    }
}

/// One resource, as a visitor ([`Template::visit_mut`]) sees it: its id and type, and its
/// properties to change (CDK's aspects).
pub struct ResourceMut<'a> {
    /// The logical id.
    pub id: &'a str,
    /// The CloudFormation type name.
    pub type_name: &'a str,
    /// The properties, a JSON object (empty when the resource sets none).
    pub properties: &'a mut Map<String, Json>,
}

/// A property set or removed at render, after everything else ([`Template::override_property`]).
#[derive(Clone, Debug, PartialEq)]
struct Override {
    id: String,
    path: Vec<String>,
    value: Option<Json>,
}

/// A template under construction.
pub struct Template {
    description: String,
    parameters: BTreeMap<String, Parameter>,
    resources: BTreeMap<String, Entry>,
    /// Each output's body (`Description`, `Value`, `Export`).
    outputs: BTreeMap<String, Json>,
    overrides: Vec<Override>,
    errors: Vec<TemplateError>,
}

/// The text formats a template renders to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON, two-space indent.
    Json,
    /// YAML in block style, readable the same way by YAML 1.1 and 1.2 readers.
    Yaml,
}

impl Template {
    /// An empty template with its `Description`.
    pub fn new(description: impl Into<String>) -> Template {
        Template {
            description: description.into(),
            parameters: BTreeMap::new(),
            resources: BTreeMap::new(),
            outputs: BTreeMap::new(),
            overrides: Vec::new(),
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
                type_name: R::TYPE.to_string(),
                attributes: Some(R::Attr::all().iter().map(|a| a.name()).collect()),
                properties,
                options,
                raw_keys: Map::new(),
            },
        );
        Handle {
            id: id.to_string(),
            _type: PhantomData,
        }
    }

    /// Declares a resource by type name and JSON properties ([`RawResource`]).
    pub fn add_raw(&mut self, id: &str, resource: RawResource) -> RawHandle {
        self.check_new_id(id);
        let properties = match resource.properties {
            Json::Null => Json::Object(Map::new()),
            p @ Json::Object(_) => p,
            _ => {
                self.errors.push(TemplateError::BadRawResource {
                    id: id.to_string(),
                    reason: "its properties are not a mapping".into(),
                });
                Json::Object(Map::new())
            }
        };
        if let Some(k) = resource
            .keys
            .keys()
            .find(|k| !RAW_RESOURCE_KEYS.contains(&k.as_str()))
        {
            self.errors.push(TemplateError::BadRawResource {
                id: id.to_string(),
                reason: format!(
                    "`{k}` is not a resource-level key it may set ({})",
                    RAW_RESOURCE_KEYS.join(", ")
                ),
            });
        }
        self.resources.insert(
            id.to_string(),
            Entry {
                type_name: resource.type_name,
                attributes: None,
                properties,
                options: Options::default(),
                raw_keys: resource.keys,
            },
        );
        RawHandle { id: id.to_string() }
    }

    /// Sets (`Some`) or removes (`None`) a property of resource `id` at render, after every
    /// other change: `path` names the property and the keys (or list indexes) below it, as in
    /// CDK's `addPropertyOverride("A.B", v)`. Missing mappings on the way are created. A
    /// resource the template does not declare, or a path through a value that is not a mapping
    /// or list, fails at render.
    ///
    /// ```
    /// use stack_model::template::Template;
    /// use stack_model::resource::sns::Topic;
    /// use serde_json::json;
    /// let mut t = Template::new("t");
    /// t.add("Alerts", Topic::default());
    /// t.override_property("Alerts", &["FifoTopic"], Some(json!(true)));
    /// t.override_property("Alerts", &["DeliveryPolicy", "http", "defaultHealthyRetryPolicy", "numRetries"], Some(json!(5)));
    /// let v = t.to_json().unwrap();
    /// assert_eq!(v["Resources"]["Alerts"]["Properties"]["FifoTopic"], json!(true));
    /// assert_eq!(v["Resources"]["Alerts"]["Properties"]["DeliveryPolicy"]["http"]["defaultHealthyRetryPolicy"]["numRetries"], json!(5));
    /// ```
    pub fn override_property(&mut self, id: &str, path: &[&str], value: Option<Json>) {
        self.overrides.push(Override {
            id: id.to_string(),
            path: path.iter().map(|p| p.to_string()).collect(),
            value,
        });
    }

    /// Calls `f` with every resource, in logical-id order, to read or change its properties
    /// (CDK's aspects: a rule applied to the whole stage, such as a tag on every taggable
    /// type).
    ///
    /// ```
    /// use stack_model::template::Template;
    /// use stack_model::resource::sns::Topic;
    /// use serde_json::json;
    /// let mut t = Template::new("t");
    /// t.add("A", Topic::default());
    /// t.add("B", Topic::default());
    /// t.visit_mut(|r| {
    ///     if r.type_name == "AWS::SNS::Topic" {
    ///         r.properties.insert("DisplayName".into(), json!(format!("topic {}", r.id)));
    ///     }
    /// });
    /// assert_eq!(t.to_json().unwrap()["Resources"]["B"]["Properties"]["DisplayName"], "topic B");
    /// ```
    pub fn visit_mut(&mut self, mut f: impl FnMut(ResourceMut<'_>)) {
        for (id, entry) in &mut self.resources {
            if !entry.properties.is_object() {
                entry.properties = Json::Object(Map::new());
            }
            let Json::Object(properties) = &mut entry.properties else {
                unreachable!("made an object above")
            };
            f(ResourceMut {
                id,
                type_name: &entry.type_name,
                properties,
            });
        }
    }

    /// A `Ref` of resource or parameter `id`, checked now: for what no handle reaches (a
    /// resource another part added, known by its logical id).
    ///
    /// ```
    /// use stack_model::template::Template;
    /// use stack_model::resource::sns::Topic;
    /// let mut t = Template::new("t");
    /// t.add("Alerts", Topic::default());
    /// assert!(t.reference("Alerts").is_ok());
    /// assert!(t.reference("Nothing").is_err());
    /// ```
    pub fn reference(&self, id: &str) -> Result<Value, TemplateError> {
        self.check_ref("(reference)", id)?;
        if Pseudo::ALL.iter().any(|p| p.name() == id) {
            return Err(TemplateError::UnknownReference {
                from: "(reference)".into(),
                target: id.into(),
            });
        }
        Ok(Value::Ref(Target::new(id)))
    }

    /// A `Fn::GetAtt` of resource `id`, checked now against its type's attributes.
    pub fn get_att(&self, id: &str, attribute: &str) -> Result<Value, TemplateError> {
        self.check_get_att("(reference)", id, attribute)?;
        Ok(Value::GetAtt(Target::new(id), attribute.to_string()))
    }

    /// Whether the template declares resource or parameter `id`.
    pub fn contains(&self, id: &str) -> bool {
        self.resources.contains_key(id) || self.parameters.contains_key(id)
    }

    /// The type of resource `id`, if declared.
    pub fn type_of(&self, id: &str) -> Option<&str> {
        self.resources.get(id).map(|e| e.type_name.as_str())
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
        let value = serde_json::to_value(value).expect("values serialize");
        self.raw_output(
            name,
            json!({"Description": description.into(), "Value": value}),
        );
    }

    /// Declares an output from its JSON body (`Value`, and `Description` or `Export` as
    /// CloudFormation takes them); its references are checked at render.
    pub fn raw_output(&mut self, name: &str, body: Json) {
        if !valid_logical_id(name) {
            self.errors
                .push(TemplateError::InvalidLogicalId(name.to_string()));
        }
        if self.outputs.insert(name.to_string(), body).is_some() {
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
    pub fn resource_types(&self) -> impl Iterator<Item = (&str, &str)> {
        self.resources
            .iter()
            .map(|(id, e)| (id.as_str(), e.type_name.as_str()))
    }

    /// The properties of resource `id` after the overrides.
    fn properties_of(&self, id: &str, entry: &Entry) -> Result<Json, TemplateError> {
        let mut properties = entry.properties.clone();
        for o in self.overrides.iter().filter(|o| o.id == id) {
            apply_override(&mut properties, &o.path, o.value.clone()).map_err(|reason| {
                TemplateError::BadOverridePath {
                    id: id.to_string(),
                    path: o.path.join("."),
                    reason,
                }
            })?;
        }
        Ok(properties)
    }

    /// The template as a JSON value, after checking every reference.
    pub fn to_json(&self) -> Result<Json, TemplateError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| !self.resources.contains_key(&o.id))
        {
            return Err(TemplateError::UnknownOverrideTarget(o.id.clone()));
        }
        let mut resources = Map::new();
        for (id, entry) in &self.resources {
            let properties = self.properties_of(id, entry)?;
            self.check_references(id, &properties)?;
            self.check_references(id, &Json::Object(entry.raw_keys.clone()))?;
            let mut body = Map::new();
            body.insert("Type".into(), json!(entry.type_name));
            if properties.as_object().is_some_and(|p| !p.is_empty()) {
                body.insert("Properties".into(), properties);
            }
            for (k, v) in &entry.raw_keys {
                if k == "DependsOn" {
                    let targets: Vec<&str> = match v {
                        Json::String(s) => vec![s.as_str()],
                        Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
                        _ => vec![],
                    };
                    if let Some(t) = targets.iter().find(|t| !self.resources.contains_key(**t)) {
                        return Err(TemplateError::UnknownReference {
                            from: id.clone(),
                            target: t.to_string(),
                        });
                    }
                }
                body.insert(k.clone(), v.clone());
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
        for (name, body) in &self.outputs {
            self.check_references(name, body)?;
            outputs.insert(name.clone(), body.clone());
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
                    match map.get("Fn::GetAtt") {
                        Some(Json::Array(args)) => {
                            if let [Json::String(target), Json::String(attr)] = args.as_slice() {
                                return self.check_get_att(from, target, attr);
                            }
                        }
                        // The short form a YAML user may write: `Resource.Attribute`.
                        Some(Json::String(text)) => {
                            let (target, attr) = text.split_once('.').unwrap_or((text, ""));
                            return self.check_get_att(from, target, attr);
                        }
                        _ => {}
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
        let known = match &entry.attributes {
            Some(typed) => typed.contains(&attr),
            // A raw resource: its schema's attributes; any, where the facts do not know it.
            None => crate::facts::type_facts(&entry.type_name)
                .is_none_or(|f| f.attributes.iter().any(|a| a == attr)),
        };
        if known {
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

/// Sets or removes the value at `path` below `properties`.
fn apply_override(
    properties: &mut Json,
    path: &[String],
    value: Option<Json>,
) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        return Err("the path is empty".into());
    };
    let mut here = properties;
    for (i, name) in parents.iter().enumerate() {
        let next = path.get(i + 1).expect("a parent has a child");
        here = match here {
            Json::Object(m) => m.entry(name.clone()).or_insert_with(|| {
                if next.parse::<usize>().is_ok() {
                    Json::Array(vec![])
                } else {
                    Json::Object(Map::new())
                }
            }),
            Json::Array(a) => {
                let n: usize = name
                    .parse()
                    .map_err(|_| format!("`{name}` is not an index of a list"))?;
                let len = a.len();
                a.get_mut(n)
                    .ok_or_else(|| format!("index {n} is past the list's end ({len} items)"))?
            }
            _ => {
                return Err(format!(
                    "`{name}` is below a value that is not a mapping or list"
                ))
            }
        };
    }
    match (here, value) {
        (Json::Object(m), Some(v)) => {
            m.insert(last.clone(), v);
        }
        (Json::Object(m), None) => {
            m.remove(last);
        }
        (Json::Array(a), v) => {
            let n: usize = last
                .parse()
                .map_err(|_| format!("`{last}` is not an index of a list"))?;
            match v {
                Some(v) if n < a.len() => a[n] = v,
                Some(v) if n == a.len() => a.push(v),
                None if n < a.len() => {
                    a.remove(n);
                }
                _ => {
                    return Err(format!(
                        "index {n} is past the list's end ({} items)",
                        a.len()
                    ))
                }
            }
        }
        _ => {
            return Err(format!(
                "`{last}` is below a value that is not a mapping or list"
            ))
        }
    }
    Ok(())
}

/// Whether CloudFormation accepts `id` as a logical id (1 to 255 ASCII letters and digits).
pub(crate) fn valid_logical_id(id: &str) -> bool {
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
