//! The IAM calls CloudFormation's handlers make for a rendered template: for each resource and
//! handler, each action of [`crate::facts`] with the ARNs it is authorized on and the context
//! keys it carries. The CloudFormation role's policy is made of them
//! ([`crate::cloudformation_role`]), and `deployer preflight` asks IAM about each.
//!
//! How a call gets its ARNs: an action IAM authorizes on resource types (the service
//! authorization reference, through parliament's definitions) names one of each required type.
//! The resource's own variables (its name, from [`crate::facts::TypeFacts::names`]) fill the
//! formats of its own types; the resources it references (`Ref`, `Fn::GetAtt`, ARNs, `s3://`
//! locations, a Lambda function's code object) fill the others. An action none of whose
//! required types can be filled acts on a resource the template does not name (Lambda's EFS
//! mount targets, S3's table buckets): the handler has nothing to call it on, so it is not
//! needed. An action without resource types is authorized on `*`.
//!
//! ```
//! use stack_model::{handler_calls::{calls, ArnEnv}, pipeline, StageConfig, StageName};
//! let c = StageConfig::defaults(StageName::parse("alice").unwrap());
//! let t = pipeline::template(&c).to_json().unwrap();
//! let env = ArnEnv::new("aws", "us-east-1", "123456789012");
//! let all = calls(&t, &env);
//! assert!(all.iter().any(|call| call.action == "lambda:CreateFunction"
//!     && call.resources == ["arn:aws:lambda:us-east-1:123456789012:function:pdcase-alice-etl"]));
//! ```

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::facts::{self, Handler};

/// The partition, region, account and parameter values the template's ARNs resolve in.
#[derive(Clone, Debug)]
pub struct ArnEnv {
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// The stack's region.
    pub region: String,
    /// The account, or a placeholder such as `${AWS::AccountId}` kept in the output.
    pub account: String,
    /// Values of the template's parameters (a pattern such as `lambda/*` where any is
    /// possible).
    pub parameters: BTreeMap<String, String>,
}

impl ArnEnv {
    /// An environment without parameter values.
    pub fn new(partition: &str, region: &str, account: &str) -> ArnEnv {
        ArnEnv {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            parameters: BTreeMap::new(),
        }
    }

    /// With a parameter's value.
    pub fn with_parameter(mut self, name: &str, value: &str) -> ArnEnv {
        self.parameters.insert(name.into(), value.into());
        self
    }
}

/// One call a handler makes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    /// The template's logical id of the resource.
    pub logical_id: String,
    /// Its CloudFormation type.
    pub resource_type: String,
    /// The handler that makes the call.
    pub handler: &'static str,
    /// `service:Action`.
    pub action: String,
    /// The ARNs it is authorized on (`*` for an action without resource types).
    pub resources: Vec<String>,
    /// Context keys the request carries and their values (`iam:PassedToService`,
    /// `iam:PolicyARN`).
    pub context: Vec<(String, String)>,
}

/// Variables that fill ARN formats.
type Vars = BTreeMap<String, String>;

/// Every call of every handler for every resource of the rendered template `t`.
pub fn calls(t: &Json, env: &ArnEnv) -> Vec<Call> {
    calls_of(t, env, &Handler::ALL)
}

/// The calls of the given handlers only.
pub fn calls_of(t: &Json, env: &ArnEnv, handlers: &[Handler]) -> Vec<Call> {
    let resources = t["Resources"].as_object().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (id, r) in &resources {
        let ty = r["Type"].as_str().unwrap_or_default();
        let props = &r["Properties"];
        let own = own_vars(t, id, env, 0);
        let mut referenced = Vec::new();
        references(t, props, env, &mut referenced);
        for &h in handlers {
            for action in facts::handler_actions(ty, h, props) {
                let Some(arns) = arns_for(action, &own, &referenced, env) else {
                    continue;
                };
                for context in contexts(ty, action, props, t, env) {
                    out.push(Call {
                        logical_id: id.clone(),
                        resource_type: ty.to_owned(),
                        handler: h.as_str(),
                        action: action.to_owned(),
                        resources: arns.clone(),
                        context,
                    });
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The ARNs `action` is authorized on, or `None` when it needs a resource of a type the
/// template names none of.
fn arns_for(action: &str, own: &Vars, referenced: &[Vars], env: &ArnEnv) -> Option<Vec<String>> {
    let af = facts::action_facts(action)?;
    // The types every call names; where IAM marks none required, those some calls name (a
    // tagging action on the resource's own type).
    let any_required = af.resources.iter().any(|r| r.required);
    let types: Vec<_> = af
        .resources
        .iter()
        .filter(|r| r.required || !any_required)
        .collect();
    if types.is_empty() {
        return Some(vec!["*".into()]);
    }
    // Several required types of one action are alternatives (`athena:TagResource` on a work
    // group, a data catalog or a capacity reservation): each the template names is a call.
    let mut filled = Vec::new();
    for r in &types {
        for format in &r.arns {
            // A format naming no resource (S3's `access-grants/default`) is a call's only when
            // IAM says every call names it (Glue's `catalog`).
            if !r.required
                && fill_any(format, env) == fill(format, &Vars::new(), env).unwrap_or_default()
            {
                continue;
            }
            for vars in std::iter::once(own).chain(referenced) {
                if let Some(arn) = fill(format, vars, env) {
                    filled.push(arn);
                }
            }
        }
    }
    if filled.is_empty() {
        // Of a required type: the template names nothing to call it on. Of optional types
        // only: a call that names none of them is authorized on `*`.
        return (!any_required).then(|| vec!["*".into()]);
    }
    filled.sort();
    filled.dedup();
    Some(filled)
}

/// The context of each request of `action` (one request per value where a call repeats, as
/// `AttachRolePolicy` does per managed policy).
fn contexts(
    ty: &str,
    action: &str,
    props: &Json,
    t: &Json,
    env: &ArnEnv,
) -> Vec<Vec<(String, String)>> {
    match action {
        "iam:PassRole" => match facts::type_facts(ty).and_then(|f| f.passed_to.clone()) {
            Some(service) => vec![vec![("iam:PassedToService".into(), service)]],
            None => vec![vec![]],
        },
        "iam:AttachRolePolicy" | "iam:DetachRolePolicy" if ty == "AWS::IAM::Role" => {
            let arns: Vec<String> = props["ManagedPolicyArns"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| resolve(t, v, env)).collect())
                .unwrap_or_default();
            if arns.is_empty() {
                vec![]
            } else {
                arns.into_iter()
                    .map(|a| vec![("iam:PolicyARN".into(), a)])
                    .collect()
            }
        }
        _ => vec![vec![]],
    }
}

/// The variables a resource fills: its names (the partition, region and account fill every
/// format: [`arn_pseudo`]).
fn own_vars(t: &Json, id: &str, env: &ArnEnv, depth: usize) -> Vars {
    let r = &t["Resources"][id];
    let ty = r["Type"].as_str().unwrap_or_default();
    let mut vars = Vars::new();
    let Some(f) = facts::type_facts(ty) else {
        return vars;
    };
    for (var, path) in &f.names {
        if path == "*" {
            vars.insert(var.clone(), "*".into());
            continue;
        }
        if let Some(fixed) = path.strip_prefix('=') {
            // A name AWS fixes (a service-linked role's).
            vars.insert(var.clone(), fixed.into());
            continue;
        }
        let Some(v) = facts::property(&r["Properties"], path) else {
            // A type without recorded decisions, whose name the template leaves to AWS: any
            // name (CloudFormation makes one up at create time).
            if !f.decided {
                vars.insert(var.clone(), "*".into());
            }
            continue;
        };
        match referenced_id(t, v) {
            // A name given by reference is the referenced resource's.
            Some(other) if depth < 4 => vars.extend(own_vars(t, &other, env, depth + 1)),
            _ => {
                if let Some(s) = resolve(t, v, env) {
                    vars.insert(var.clone(), s);
                }
            }
        }
    }
    vars
}

/// The logical id a `Ref` or `Fn::GetAtt` names, if it is a resource.
fn referenced_id(t: &Json, v: &Json) -> Option<String> {
    let id = v
        .get("Ref")
        .and_then(Json::as_str)
        .map(str::to_owned)
        .or_else(|| match v.get("Fn::GetAtt") {
            Some(Json::Array(a)) => a.first().and_then(Json::as_str).map(str::to_owned),
            Some(Json::String(s)) => s.split('.').next().map(str::to_owned),
            _ => None,
        })?;
    t["Resources"].get(&id).map(|_| id)
}

/// The text of a value: a literal, a parameter, or a `Fn::Sub` of pseudo parameters and
/// parameters (anything else: `*`).
fn resolve(t: &Json, v: &Json, env: &ArnEnv) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Object(o) if o.len() == 1 => {
            if let Some(Json::String(name)) = o.get("Ref") {
                return env
                    .parameters
                    .get(name)
                    .cloned()
                    .or_else(|| pseudo(name, env));
            }
            match o.get("Fn::Sub") {
                Some(Json::String(text)) => Some(substitute(text, &BTreeMap::new(), env)),
                // `[text, {name: value}]`: each name's value resolved first.
                Some(Json::Array(a)) => {
                    let text = a.first()?.as_str()?;
                    let vars = a
                        .get(1)
                        .and_then(Json::as_object)
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| {
                                    let value = match referenced_id(t, v) {
                                        Some(id) => name_of(t, &id, env)?,
                                        None => resolve(t, v, env)?,
                                    };
                                    Some((k.clone(), value))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Some(substitute(text, &vars, env))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn pseudo(name: &str, env: &ArnEnv) -> Option<String> {
    match name {
        "AWS::AccountId" => Some(env.account.clone()),
        "AWS::Region" => Some(env.region.clone()),
        "AWS::Partition" => Some(env.partition.clone()),
        "AWS::URLSuffix" => Some("amazonaws.com".into()),
        _ => None,
    }
}

/// The name a resource gives where a value names it: its one named variable (a bucket's
/// `BucketName`), if it has exactly one.
fn name_of(t: &Json, id: &str, env: &ArnEnv) -> Option<String> {
    let vars = own_vars(t, id, env, 0);
    let mut named = vars.values().filter(|v| *v != "*");
    match (named.next(), named.next()) {
        (Some(v), None) => Some(v.clone()),
        _ => None,
    }
}

fn substitute(text: &str, vars: &BTreeMap<String, String>, env: &ArnEnv) -> String {
    expand(text, |name| {
        Some(
            vars.get(name)
                .or_else(|| env.parameters.get(name))
                .cloned()
                .or_else(|| pseudo(name, env))
                .unwrap_or_else(|| "*".into()),
        )
    })
    .unwrap_or_else(|| text.to_owned())
}

/// `text` with each `${name}` replaced by `value(name)`; `None` when a value is missing. (Both
/// `Fn::Sub` and IAM's ARN formats spell variables so; an unclosed `${` is kept as text.)
fn expand(text: &str, value: impl Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        out.push_str(&value(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The partition, region or account an ARN format names.
fn arn_pseudo(name: &str, env: &ArnEnv) -> Option<String> {
    match name {
        "Partition" => Some(env.partition.clone()),
        "Region" => Some(env.region.clone()),
        "Account" => Some(env.account.clone()),
        _ => None,
    }
}

/// Every resource a value names: referenced resources' own variables, ARNs, `s3://` locations,
/// and `S3Bucket`/`S3Key` pairs (a function's code).
fn references(t: &Json, v: &Json, env: &ArnEnv, out: &mut Vec<Vars>) {
    if let Some(id) = referenced_id(t, v) {
        out.push(own_vars(t, &id, env, 0));
        return;
    }
    match v {
        Json::Object(o) => {
            if let (Some(b), Some(k)) = (o.get("S3Bucket"), o.get("S3Key")) {
                if let (Some(b), Some(k)) = (resolve(t, b, env), resolve(t, k, env)) {
                    out.push(object_vars(&b, &k));
                }
            }
            if o.len() == 1 && (o.contains_key("Fn::Sub") || o.contains_key("Ref")) {
                if let Some(s) = resolve(t, v, env) {
                    text_reference(&s, out);
                }
                return;
            }
            // A function's environment, a resource's tags and the policy documents a resource
            // holds are values it keeps, not resources its handler calls on.
            for (k, x) in o {
                if !KEPT_VALUES.contains(&k.as_str()) {
                    references(t, x, env, out);
                }
            }
        }
        Json::Array(a) => a.iter().for_each(|x| references(t, x, env, out)),
        Json::String(s) => text_reference(s, out),
        _ => {}
    }
}

/// Properties whose text is the resource's own content: never references.
const KEPT_VALUES: &[&str] = &[
    "Environment",
    "Tags",
    "PolicyDocument",
    "AssumeRolePolicyDocument",
    "KeyPolicy",
];

fn object_vars(bucket: &str, key: &str) -> Vars {
    Vars::from([
        ("BucketName".into(), bucket.to_owned()),
        ("ObjectName".into(), key.to_owned()),
    ])
}

/// A location or an ARN in text.
fn text_reference(s: &str, out: &mut Vec<Vars>) {
    if let Some(rest) = s.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        // A bucket this module cannot name (a `Fn::Sub` of something it does not resolve)
        // would widen the grant to every bucket: not a reference it can follow.
        if !bucket.contains('*') {
            out.push(object_vars(bucket, &format!("{key}*")));
        }
    } else if s.starts_with("arn:") {
        out.push(Vars::from([("Arn".into(), s.to_owned())]));
    }
}

/// A format filled from `vars`, or `None` when a variable is missing. A variable set `Arn`
/// (a literal ARN the template names) fills a format it matches.
fn fill(format: &str, vars: &Vars, env: &ArnEnv) -> Option<String> {
    if let Some(arn) = vars.get("Arn") {
        return arn_matches(format, arn, env).then(|| arn.clone());
    }
    expand(format, |name| {
        arn_pseudo(name, env).or_else(|| vars.get(name).cloned())
    })
}

/// The format with every resource variable `*`.
fn fill_any(format: &str, env: &ArnEnv) -> String {
    expand(format, |name| {
        arn_pseudo(name, env).or_else(|| Some("*".into()))
    })
    .unwrap_or_else(|| format.to_owned())
}

/// Whether a literal ARN is of the format's kind: same service, and the same fixed text before
/// the format's first resource variable (AWS managed policies have account `aws`).
fn arn_matches(format: &str, arn: &str, env: &ArnEnv) -> bool {
    let head = fill_any(format, env);
    let prefix = head.split('*').next().unwrap_or_default();
    let service = |a: &str| a.split(':').nth(2).map(str::to_owned);
    let kind = |a: &str| {
        a.split(':')
            .nth(5)
            .map(|r| r.split(['/', ':']).next().unwrap_or_default().to_owned())
    };
    service(&head) == service(arn)
        && kind(&head) == kind(arn)
        && (arn.starts_with(prefix) || (service(arn).as_deref() == Some("iam")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pipeline, StageConfig, StageName};

    fn stage_calls(hardened: bool, emr: bool) -> Vec<Call> {
        let mut c = StageConfig::defaults(StageName::parse("alice").unwrap());
        c.hardened = hardened;
        if emr {
            c.base_b_engine = crate::config::BaseBEngine::Emr;
        }
        let env = ArnEnv::new("aws", "us-east-1", "123456789012")
            .with_parameter(
                "ArtifactsBucket",
                "pdcase-alice-artifacts-123456789012-us-east-1",
            )
            .with_parameter("LambdaCodeKey", "lambda/*")
            .with_parameter("SparkJobKey", "spark/*");
        calls(&pipeline::template(&c).to_json().unwrap(), &env)
    }

    /// The first EMR Serverless application of an account creates EMR Serverless's
    /// service-linked role with the caller's (CloudFormation's role's) permission: the create
    /// handler's `iam:CreateServiceLinkedRole` names that role and no other. The application's
    /// own id is AWS's pick, so its calls name any application of the account and region.
    #[test]
    fn the_application_creates_emr_serverless_service_linked_role_only() {
        let all = stage_calls(false, true);
        let slr: Vec<_> = all
            .iter()
            .filter(|c| c.action == "iam:CreateServiceLinkedRole")
            .collect();
        assert_eq!(slr.len(), 1, "{slr:?}");
        assert_eq!(slr[0].resource_type, "AWS::EMRServerless::Application");
        assert_eq!(
            slr[0].resources,
            ["arn:aws:iam::123456789012:role/aws-service-role/ops.emr-serverless.amazonaws.com/AWSServiceRoleForAmazonEMRServerless"]
        );
        let tag = all
            .iter()
            .find(|c| c.action == "emr-serverless:TagResource" && c.handler == "create")
            .unwrap();
        assert_eq!(
            tag.resources,
            ["arn:aws:emr-serverless:us-east-1:123456789012:/applications/*"]
        );
        // No identity center, image or network calls: the template names none of their
        // resources.
        assert!(!all.iter().any(|c| c.action.starts_with("sso:")
            || c.action.starts_with("ecr:")
            || c.action == "ec2:CreateNetworkInterface"));
    }

    #[test]
    fn the_stage_key_is_tagged_on_any_key_as_it_is_created() {
        let all = stage_calls(true, false);
        let tag = all
            .iter()
            .find(|c| {
                c.resource_type == "AWS::KMS::Key"
                    && c.handler == "create"
                    && c.action == "kms:TagResource"
            })
            .expect("CreateKey sends the tags");
        assert_eq!(tag.resources, ["arn:aws:kms:us-east-1:123456789012:key/*"]);
        let create = all.iter().find(|c| c.action == "kms:CreateKey").unwrap();
        assert_eq!(create.resources, ["*"]);
    }

    #[test]
    fn a_function_reads_its_code_and_passes_its_own_role_to_lambda() {
        let all = stage_calls(false, false);
        let of_etl = |action: &str| {
            all.iter()
                .find(|c| {
                    c.logical_id == "EtlFunction" && c.action == action && c.handler == "create"
                })
                .unwrap_or_else(|| panic!("{action}"))
                .clone()
        };
        assert_eq!(
            of_etl("s3:GetObject").resources,
            ["arn:aws:s3:::pdcase-alice-artifacts-123456789012-us-east-1/lambda/*"]
        );
        assert_eq!(
            of_etl("iam:PassRole").resources,
            ["arn:aws:iam::123456789012:role/pdcase-alice-etl-us-east-1"]
        );
        // Lambda's EFS and capacity-provider calls act on nothing the template names.
        assert!(!all
            .iter()
            .any(|c| c.action.starts_with("elasticfilesystem:")));
        // S3's table buckets: none.
        assert!(!all.iter().any(|c| c.action.starts_with("s3tables:")));
    }

    #[test]
    fn attaching_a_managed_policy_names_it_in_the_context() {
        let all = stage_calls(false, true);
        let attach: Vec<_> = all
            .iter()
            .filter(|c| c.action == "iam:AttachRolePolicy")
            .flat_map(|c| c.context.iter().map(|(_, v)| v.clone()))
            .collect();
        assert!(attach
            .iter()
            .any(|a| a.ends_with(":policy/service-role/AWSGlueServiceRole")));
        assert!(attach
            .iter()
            .all(|a| a.starts_with("arn:aws:iam::aws:policy/")));
    }
}
