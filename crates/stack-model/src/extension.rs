//! What a user adds to a stage in `pipeline.yaml`, Serverless's way: CloudFormation resources
//! and outputs (`resources:`, with `Resources` and `Outputs` as in a template), and properties
//! of the pipeline's own resources set or removed (`overrides:`).
//!
//! ```yaml
//! stages:
//!   alice:
//!     resources:
//!       Resources:
//!         UsageTable:
//!           Type: AWS::DynamoDB::Table
//!           Properties:
//!             BillingMode: PAY_PER_REQUEST
//!             AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
//!             KeySchema: [{AttributeName: id, KeyType: HASH}]
//!       Outputs:
//!         UsageTableName: {Value: !Ref UsageTable}
//!     overrides:
//!       EtlFunction:
//!         Description: the ETL, with tracing
//!         TracingConfig.Mode: Active   # a path below a property: `.` between keys
//!         ReservedConcurrentExecutions: null  # null removes the property
//! ```
//!
//! This module holds them as read ([`Extensions`]), each with where it was written
//! ([`Origin`]), so every later refusal names the file, the line and the key. The file's
//! structure is checked when `pipeline.yaml` is read; the types, properties and
//! references when the stage's template is composed ([`crate::pipeline::check_extensions`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value as Json};

/// Everything a stage's `resources:` and `overrides:` add (the defaults', then the stage's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Resources added, by logical id.
    pub resources: BTreeMap<String, AddedResource>,
    /// Outputs added, by name.
    pub outputs: BTreeMap<String, AddedOutput>,
    /// Properties of the pipeline's resources set or removed, in the file's order (the
    /// defaults' first: a stage's own wins on the same path).
    pub overrides: Vec<PropertyOverride>,
    /// The resources the deployed stack holds, as its template has them (filled by `deployer
    /// bootstrap`; never read from the file): the CloudFormation role keeps their delete
    /// calls, for one taken out of `resources:` (the next deploy deletes it) and for one a
    /// change replaces (CloudFormation deletes the old physical resource, under its old name,
    /// after making the new one).
    pub deployed: Map<String, Json>,
}

impl Extensions {
    /// Whether the stage adds or overrides nothing.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.outputs.is_empty() && self.overrides.is_empty()
    }
}

/// Where something was written: the file, its dotted key path, and the line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The configuration file.
    pub file: PathBuf,
    /// A dotted key path such as `stages.alice.resources.Resources.UsageTable`.
    pub key: String,
    /// Line and column (1-based) of the key, where the file shows it.
    pub location: Option<(usize, usize)>,
    /// Lines and columns of the keys below it, by their path below `key` (`Properties.Name`).
    pub inner: BTreeMap<String, (usize, usize)>,
}

/// A resource added under `resources.Resources`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedResource {
    /// Its `Type`.
    pub type_name: String,
    /// Its `Properties` (a mapping, empty when it sets none), intrinsic functions in their
    /// long form (`!Ref X` is read as `{"Ref": "X"}`).
    pub properties: Map<String, Json>,
    /// Its resource-level keys: `DependsOn`, `DeletionPolicy`, `UpdateReplacePolicy`,
    /// `Metadata`.
    pub keys: Map<String, Json>,
    /// Where it was written.
    pub origin: Origin,
}

/// An output added under `resources.Outputs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedOutput {
    /// Its body: `Value`, and `Description` or `Export`.
    pub body: Json,
    /// Where it was written.
    pub origin: Origin,
}

/// A property of a pipeline resource set (`value: Some`) or removed (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyOverride {
    /// The pipeline resource's logical id.
    pub id: String,
    /// The property's path below `Properties`: names, or list indexes.
    pub path: Vec<String>,
    /// The value set, or `None` to remove the property.
    pub value: Option<Json>,
    /// Where it was written.
    pub origin: Origin,
}

/// The YAML short forms of CloudFormation's intrinsic functions, with their long names.
const SHORT_FORMS: [(&str, &str); 18] = [
    ("Ref", "Ref"),
    ("GetAtt", "Fn::GetAtt"),
    ("Sub", "Fn::Sub"),
    ("Join", "Fn::Join"),
    ("Select", "Fn::Select"),
    ("Split", "Fn::Split"),
    ("GetAZs", "Fn::GetAZs"),
    ("ImportValue", "Fn::ImportValue"),
    ("FindInMap", "Fn::FindInMap"),
    ("Base64", "Fn::Base64"),
    ("Cidr", "Fn::Cidr"),
    ("If", "Fn::If"),
    ("Equals", "Fn::Equals"),
    ("Not", "Fn::Not"),
    ("And", "Fn::And"),
    ("Or", "Fn::Or"),
    ("Condition", "Condition"),
    ("ToJsonString", "Fn::ToJsonString"),
];

/// A YAML value as CloudFormation's JSON: short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub`)
/// become their long form, as `aws cloudformation` and cfn-flip read them. An unknown tag is
/// refused, naming it.
pub fn yaml_to_json(value: &serde_yaml_ng::Value) -> Result<Json, String> {
    use serde_yaml_ng::Value as Y;
    Ok(match value {
        Y::Null => Json::Null,
        Y::Bool(b) => Json::Bool(*b),
        Y::Number(n) => serde_json::to_value(n).map_err(|e| e.to_string())?,
        Y::String(s) => Json::String(s.clone()),
        Y::Sequence(items) => {
            Json::Array(items.iter().map(yaml_to_json).collect::<Result<_, _>>()?)
        }
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("a key must be text, not {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Json::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let Some((_, long)) = SHORT_FORMS.iter().find(|(short, _)| *short == name) else {
                return Err(format!(
                    "`{tag}` is not a CloudFormation function's short form (such as !Ref, !GetAtt, !Sub)"
                ));
            };
            let inner = yaml_to_json(&tagged.value)?;
            // `!GetAtt Resource.Attribute`: the long form takes a list.
            let inner = match (*long, inner) {
                ("Fn::GetAtt", Json::String(s)) => match s.split_once('.') {
                    Some((r, a)) => Json::Array(vec![r.into(), a.into()]),
                    None => Json::String(s),
                },
                (_, inner) => inner,
            };
            let mut out = Map::new();
            out.insert(long.to_string(), inner);
            Json::Object(out)
        }
    })
}

/// Where each key of a YAML text is: its dotted path (list items by index) to its line and
/// column, 1-based. Written over yaml-rust2's event parser, which reports a mark per event
/// (serde's YAML reader keeps no positions once a value is read).
///
/// ```
/// let at = stack_model::extension::key_locations("a:\n  b: [1, {c: 2}]\n");
/// assert_eq!(at["a.b"], (2, 3));
/// assert_eq!(at["a.b.1.c"], (2, 11));
/// ```
pub fn key_locations(text: &str) -> BTreeMap<String, (usize, usize)> {
    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    enum Frame {
        /// A mapping: the key whose value comes next, if one was read.
        Map(Option<String>),
        /// A sequence: the index of the next item.
        Seq(usize),
    }
    #[derive(Default)]
    struct Walk {
        stack: Vec<Frame>,
        /// The path of each open container.
        paths: Vec<String>,
        out: BTreeMap<String, (usize, usize)>,
    }
    impl Walk {
        fn join(&self, name: &str) -> String {
            match self.paths.last() {
                Some(p) if !p.is_empty() => format!("{p}.{name}"),
                _ => name.to_string(),
            }
        }
        /// A value starts: its path, and the parent moves on.
        fn value_path(&mut self) -> Option<String> {
            match self.stack.last_mut() {
                Some(Frame::Map(key)) => key.take().map(|k| self.join_owned(k)),
                Some(Frame::Seq(i)) => {
                    let n = *i;
                    *i += 1;
                    Some(self.join_owned(n.to_string()))
                }
                None => Some(String::new()),
            }
        }
        fn join_owned(&self, name: String) -> String {
            self.join(&name)
        }
    }
    impl MarkedEventReceiver for Walk {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            match ev {
                Event::Scalar(text, ..) => {
                    if let Some(Frame::Map(key @ None)) = self.stack.last_mut() {
                        // A key.
                        *key = Some(text.clone());
                        let path = self.join(&text);
                        self.out.insert(path, (mark.line(), mark.col() + 1));
                    } else if let Some(path) = self.value_path() {
                        self.out
                            .entry(path)
                            .or_insert((mark.line(), mark.col() + 1));
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let path = self.value_path().unwrap_or_default();
                    if !path.is_empty() {
                        self.out
                            .entry(path.clone())
                            .or_insert((mark.line(), mark.col() + 1));
                    }
                    self.paths.push(path);
                    self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                        Frame::Map(None)
                    } else {
                        Frame::Seq(0)
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.stack.pop();
                    self.paths.pop();
                }
                Event::Alias(_) => {
                    self.value_path();
                }
                _ => {}
            }
        }
    }
    let mut walk = Walk::default();
    // A text serde could not read never gets here; a parse error leaves what was found.
    let _ = Parser::new_from_str(text).load(&mut walk, false);
    walk.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_forms_become_long_forms() {
        let y: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "a: !Ref Table\nb: !GetAtt Fn.Arn\nc: !Sub '${AWS::Region}-x'\nd: !Join ['', [!Ref X, y]]\n",
        )
        .unwrap();
        assert_eq!(
            yaml_to_json(&y).unwrap(),
            json!({
                "a": {"Ref": "Table"},
                "b": {"Fn::GetAtt": ["Fn", "Arn"]},
                "c": {"Fn::Sub": "${AWS::Region}-x"},
                "d": {"Fn::Join": ["", [{"Ref": "X"}, "y"]]}
            })
        );
        let bad: serde_yaml_ng::Value = serde_yaml_ng::from_str("a: !Reff X\n").unwrap();
        assert!(yaml_to_json(&bad).unwrap_err().contains("`!Reff`"));
    }

    #[test]
    fn keys_are_located_in_block_and_flow_style() {
        let text = "stages:\n  alice:\n    resources:\n      Resources:\n        T:\n          Type: AWS::SNS::Topic\n          Properties: {DisplayName: x}\n";
        let at = key_locations(text);
        assert_eq!(at["stages.alice.resources.Resources.T"], (5, 9));
        assert_eq!(at["stages.alice.resources.Resources.T.Type"], (6, 11));
        assert_eq!(
            at["stages.alice.resources.Resources.T.Properties.DisplayName"],
            (7, 24)
        );
    }
}
