//! Canonical block-style YAML for a JSON value, readable the same way by YAML 1.1 and 1.2.
//!
//! Written by hand because serde's YAML serializers (serde_yaml_ng here) follow YAML 1.2 and
//! leave `2012-10-17`, `yes`, `on` or `12:30` unquoted: YAML 1.1 readers (PyYAML, hence
//! checkov and many review tools) turn those into dates, booleans and numbers. This emitter
//! writes a string plain only when it cannot be read as anything else under either version,
//! and quotes every other string. Reading stays with serde (`serde_yaml_ng`).

use serde_json::{Map, Value};

/// Renders `value` as YAML, ending with a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => emit_map(&mut out, m, 0, false),
        Value::Array(a) if !a.is_empty() => emit_list(&mut out, a, 0, false),
        scalar => {
            out.push_str(&scalar_text(scalar));
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// `inline_first`: the first key continues a line that already holds `- `.
fn emit_map(out: &mut String, map: &Map<String, Value>, level: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, level);
        }
        out.push_str(&quote(key));
        out.push(':');
        emit_child(out, value, level);
    }
}

fn emit_list(out: &mut String, items: &[Value], level: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, level);
        }
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                emit_map(out, m, level + 2, true);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push(' ');
                emit_list(out, a, level + 2, true);
            }
            scalar => scalar_line(out, scalar),
        }
    }
}

/// The value after `key:` at `level`.
fn emit_child(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map(out, m, level + 2, false);
        }
        // Lists sit at their key's indentation, as CloudFormation examples write them.
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_list(out, a, level, false);
        }
        scalar => scalar_line(out, scalar),
    }
}

/// ` <scalar>` and the end of the line.
fn scalar_line(out: &mut String, scalar: &Value) {
    out.push(' ');
    out.push_str(&scalar_text(scalar));
    out.push('\n');
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// Words YAML 1.1 or 1.2 read as booleans or null.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// A string as a YAML scalar: plain when unambiguous, else single- or double-quoted.
pub fn quote(s: &str) -> String {
    if is_plain_safe(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        // JSON's escapes (\n, \t, \", \\, \uXXXX) are valid in YAML double-quoted scalars.
        return serde_json::to_string(s).expect("strings serialize");
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // A digit, sign or dot first could be a number, date or time in some YAML version: quoted.
    let first_ok = first.is_ascii_alphabetic() || matches!(first, '/' | '$' | '_');
    let rest_ok = s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '_'
                    | '.'
                    | '/'
                    | ':'
                    | '$'
                    | '{'
                    | '}'
                    | '('
                    | ')'
                    | '*'
                    | ','
                    | '@'
                    | '+'
                    | '='
                    | '-'
            )
    });
    first_ok
        && rest_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !RESERVED.contains(&s.to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "yes",
            "On",
            "n",
            "2012-10-17",
            "12:30",
            "1_000",
            "0",
            "-",
            "a: b",
            "x:",
            "",
            "~",
            "#c",
            "null",
            "it's",
        ] {
            assert_ne!(quote(s), s, "{s} must be quoted");
        }
        assert_eq!(quote("it's 1"), "'it''s 1'");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        for s in [
            "Ref",
            "arn:${AWS::Partition}:s3:::x",
            "/aws/lambda/x",
            "s3:ObjectCreated:*",
            "Fn::Sub",
        ] {
            assert_eq!(quote(s), s);
        }
    }

    #[test]
    fn reads_back_as_the_same_value() {
        let v = json!({
            "Version": "2012-10-17",
            "List": ["a", {"K": "yes", "L": [1, true, null]}, [], {}],
            "Nested": {"Deep": {"S": "São Paulo", "Q": "it's", "E": "", "N": 1.5}},
            "Seq": [["x", "y"], "z"],
            "Empty": []
        });
        let text = to_string(&v);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, v, "\n{text}");
    }
}
