//! What verbs print for a program to read: one JSON document per run of a verb, each with its
//! `format_version`, and files written so that a reader never sees half of one.

use serde::Serialize;

/// The version of every JSON document the CLI prints (`--format json`, `--outputs-file`). It
/// goes up when a field is removed or changes meaning; added fields keep it.
pub const FORMAT_VERSION: u32 = 1;

/// A verb's document with its format's version first.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    format_version: u32,
    #[serde(flatten)]
    doc: &'a T,
}

/// `doc` (a struct or a map) as pretty JSON, `format_version` first.
pub fn json<T: Serialize>(doc: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(&Versioned {
        format_version: FORMAT_VERSION,
        doc,
    })?)
}

/// Prints [`json`] of `doc` on standard output.
pub fn print_json<T: Serialize>(doc: &T) -> anyhow::Result<()> {
    println!("{}", json(doc)?);
    Ok(())
}

/// [`json`] of `doc` on one line: a line of JSON lines (one document per line).
pub fn json_line<T: Serialize>(doc: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&Versioned {
        format_version: FORMAT_VERSION,
        doc,
    })?)
}

/// Writes through a temporary file in the same folder and renames it into place, so an
/// existing file is never left half-written.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_carries_its_version_first() {
        let text = json(&serde_json::json!({"stage": "alice"})).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["format_version"], FORMAT_VERSION);
        assert_eq!(v["stage"], "alice");
        assert!(text.find("format_version") < text.find("stage"), "{text}");
    }
}
