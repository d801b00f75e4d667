//! Renders a diff report through the handlebars templates in `templates/` (edit them there:
//! a clone's `templates/diff.*.hbs` are read at run time; the built-in copies are the same
//! files compiled in).

use std::io::IsTerminal;

use handlebars::{handlebars_helper, no_escape, Handlebars};

use super::compare::Report;

const TEXT: &str = include_str!("../../../../templates/diff.txt.hbs");
const MARKDOWN: &str = include_str!("../../../../templates/diff.md.hbs");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Text,
    Markdown,
}

handlebars_helper!(sign: |action: str| match action { "add" => "+", "remove" => "-", _ => "~" });
handlebars_helper!(join: |list: array| list.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect::<Vec<_>>().join(", "));
handlebars_helper!(value: |v: Json| match v { serde_json::Value::Null => "(none)".to_owned(), serde_json::Value::String(s) => s.clone(), other => other.to_string() });

fn template(style: Style) -> String {
    let file = match style {
        Style::Text => "diff.txt.hbs",
        Style::Markdown => "diff.md.hbs",
    };
    crate::artifacts::workspace_root()
        .ok()
        .and_then(|root| std::fs::read_to_string(root.join("templates").join(file)).ok())
        .unwrap_or_else(|| {
            match style {
                Style::Text => TEXT,
                Style::Markdown => MARKDOWN,
            }
            .to_owned()
        })
}

pub fn render(report: &Report, style: Style) -> anyhow::Result<String> {
    let mut h = Handlebars::new();
    h.register_escape_fn(no_escape);
    h.register_helper("sign", Box::new(sign));
    h.register_helper("join", Box::new(join));
    h.register_helper("value", Box::new(value));
    h.register_template_string("report", template(style))?;
    Ok(h.render("report", report)?)
}

/// Colours text lines on a terminal: additions green, removals red, changes yellow, warnings
/// bold red.
pub fn colour(text: &str) -> String {
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return text.to_owned();
    }
    text.lines()
        .map(|l| {
            let t = l.trim_start();
            let code = if t.starts_with("! ") {
                "1;31"
            } else if t.starts_with("+ ") {
                "32"
            } else if t.starts_with("- ") {
                "31"
            } else if t.starts_with("~ ") {
                "33"
            } else {
                return format!("{l}\n");
            };
            format!("\x1b[{code}m{l}\x1b[0m\n")
        })
        .collect()
}
