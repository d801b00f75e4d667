//! Which `pipeline.yaml` a verb reads, and the checks every verb makes of it.
//!
//! Without `--config`, the file is found by walking up from the current folder to the
//! workspace root (the folder whose `Cargo.toml` has `[workspace]`), the first one found
//! winning, as Cargo finds its manifest: a verb run from `crates/etl` reads the same file as
//! one run from the root. Reading the defaults instead of a file that exists one folder up
//! would deploy `prod` without its protection (issue 26). Outside a workspace only the current
//! folder is looked in. Every verb says on standard error which file it read, or that it used
//! the built-in defaults, and checks every stage of the file, not only its own.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use stack_model::{StageConfig, StageName};

/// The file name looked for.
pub const FILE_NAME: &str = "pipeline.yaml";

/// Where a verb's settings come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file: given with `--config`, or found.
    File(PathBuf),
    /// No file: the built-in defaults. `searched` lists the folders looked in.
    Defaults { searched: Vec<PathBuf> },
}

/// Finds the configuration: `given` (`--config`) as it is, else the first `pipeline.yaml` from
/// `start` up to the workspace root.
pub fn locate(given: Option<&Path>, start: &Path) -> Source {
    if let Some(path) = given {
        return Source::File(path.to_path_buf());
    }
    let root = start.ancestors().find(|d| is_workspace_root(d));
    let mut searched = Vec::new();
    for dir in start.ancestors() {
        searched.push(dir.to_path_buf());
        let candidate = dir.join(FILE_NAME);
        if candidate.is_file() {
            return Source::File(candidate);
        }
        if root.is_none_or(|r| r == dir) {
            break;
        }
    }
    Source::Defaults { searched }
}

fn is_workspace_root(dir: &Path) -> bool {
    let manifest = dir.join("Cargo.toml");
    manifest.is_file()
        && std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]"))
}

impl Source {
    /// The line a verb prints on standard error.
    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => format!("config: {}", p.display()),
            Source::Defaults { searched } => {
                let range = match (searched.first(), searched.last()) {
                    (Some(first), Some(last)) if first != last => {
                        format!(
                            "in {} and its parents up to {}",
                            first.display(),
                            last.display()
                        )
                    }
                    (Some(first), _) => format!("in {}", first.display()),
                    _ => String::new(),
                };
                format!("config: no {FILE_NAME} {range}; using the built-in defaults")
            }
        }
    }
}

/// The configuration this process reads, located and announced once.
pub fn current(given: Option<&Path>) -> anyhow::Result<&'static Source> {
    static SOURCE: OnceLock<Source> = OnceLock::new();
    if let Some(s) = SOURCE.get() {
        return Ok(s);
    }
    let cwd = std::env::current_dir().context("reading the current folder")?;
    let source = locate(given, &cwd);
    eprintln!("{}", source.describe());
    Ok(SOURCE.get_or_init(|| source))
}

/// The settings of `stage` from `source`, after checking the whole file. A stage the file
/// does not name, when it names others, gets a warning naming those.
pub fn stage_config(source: &Source, stage: StageName) -> anyhow::Result<StageConfig> {
    match source {
        Source::Defaults { .. } => Ok(StageConfig::load(stage, None)?),
        Source::File(path) => {
            let names = check_file(path)?;
            if let Some(warning) = unnamed_stage_warning(path, &stage, &names) {
                warn_once(&warning);
            }
            StageConfig::load(stage, Some(path)).context("invalid configuration")
        }
    }
}

/// Checks the whole file ([`StageConfig::validate_file`]), then each named stage's
/// `resources:` and `overrides:` against the pipeline and the resource schemas
/// ([`stack_model::pipeline::check_extensions`]). Returns the stages it names.
pub fn check_file(path: &Path) -> anyhow::Result<Vec<StageName>> {
    let names = StageConfig::validate_file(path).context("invalid configuration")?;
    let any = StageName::parse("x").expect("a valid stage name");
    for name in names.iter().cloned().chain([any]) {
        let c = StageConfig::load(name, Some(path)).context("invalid configuration")?;
        if !c.extensions.is_empty() {
            // Only a stage that adds or overrides something needs every type's facts (about
            // 10 ms to unpack): synth of a plain stage stays a few milliseconds.
            crate::schemas::register();
            stack_model::pipeline::check_extensions(&c).context("invalid configuration")?;
        }
    }
    Ok(names)
}

/// The warning for a stage a file does not name while it names others (a typo such as
/// `--stage prd` would otherwise deploy a stage nobody configured).
pub fn unnamed_stage_warning(
    path: &Path,
    stage: &StageName,
    named: &[StageName],
) -> Option<String> {
    if named.is_empty() || named.contains(stage) {
        return None;
    }
    let names: Vec<&str> = named.iter().map(|n| n.as_str()).collect();
    Some(format!(
        "warning: stage {stage} is not named in {}, which names {}: it gets the file's defaults",
        path.display(),
        names.join(", ")
    ))
}

fn warn_once(warning: &str) {
    static WARNED: OnceLock<()> = OnceLock::new();
    if WARNED.set(()).is_ok() {
        eprintln!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("crates/etl/src")).unwrap();
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = []\n").unwrap();
        dir
    }

    #[test]
    fn the_workspace_file_is_found_from_a_subfolder() {
        let dir = tree();
        let root = dir.path().join("ws");
        let deep = root.join("crates/etl/src");
        assert!(
            matches!(locate(None, &deep), Source::Defaults { ref searched } if searched.len() == 4 && searched[3] == root)
        );
        std::fs::write(root.join(FILE_NAME), "stages: {}\n").unwrap();
        assert_eq!(locate(None, &deep), Source::File(root.join(FILE_NAME)));
        // The nearest wins.
        std::fs::write(root.join("crates").join(FILE_NAME), "").unwrap();
        assert_eq!(
            locate(None, &deep),
            Source::File(root.join("crates").join(FILE_NAME))
        );
        // --config wins over both.
        let given = dir.path().join("other.yaml");
        assert_eq!(locate(Some(&given), &deep), Source::File(given.clone()));
    }

    #[test]
    fn the_walk_stops_at_the_workspace_root() {
        let dir = tree();
        // A file above the workspace is not the workspace's.
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        let deep = dir.path().join("ws/crates/etl");
        let found = locate(None, &deep);
        assert!(matches!(found, Source::Defaults { .. }), "{found:?}");
        assert!(found.describe().contains("using the built-in defaults"));
        // Outside any workspace: the current folder only.
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        assert!(
            matches!(locate(None, &outside), Source::Defaults { ref searched } if searched == &vec![outside.clone()])
        );
    }

    #[test]
    fn a_stage_the_file_does_not_name_is_warned_of() {
        let p = Path::new("pipeline.yaml");
        let named = [
            StageName::parse("prod").unwrap(),
            StageName::parse("alice").unwrap(),
        ];
        let prd = StageName::parse("prd").unwrap();
        let w = unnamed_stage_warning(p, &prd, &named).unwrap();
        assert!(
            w.contains("stage prd is not named in pipeline.yaml, which names prod, alice"),
            "{w}"
        );
        assert!(unnamed_stage_warning(p, &named[0], &named).is_none());
        assert!(unnamed_stage_warning(p, &prd, &[]).is_none());
    }
}
