//! The artifacts a stage runs: the Lambda `bootstrap` (built for Lambda, packed into a
//! deterministic zip) and the Spark job, each named by the SHA-256 of its bytes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

/// Lambda's `provided.al2023` runs x86_64 Linux; musl makes the binary static, so it runs on
/// Amazon Linux 2023 and on any x86_64 Linux host (the local emulator runs it there).
pub const LAMBDA_TARGET: &str = "x86_64-unknown-linux-musl";

/// One artifact: its bytes and their hash.
pub struct Artifact {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

impl Artifact {
    pub fn new(bytes: Vec<u8>) -> Self {
        let sha256 = hex(&Sha256::digest(&bytes));
        Artifact { bytes, sha256 }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The workspace root: the folder whose Cargo.toml has `[workspace]`, from the current folder
/// up.
pub fn workspace_root() -> anyhow::Result<PathBuf> {
    let start = std::env::current_dir()?;
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if manifest.is_file() && std::fs::read_to_string(&manifest)?.contains("[workspace]") {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "no Cargo workspace at or above {}: run deployer from the project's clone",
        start.display()
    )
}

/// Builds the `bootstrap` in release mode for [`LAMBDA_TARGET`] and returns its path.
pub fn build_bootstrap(root: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "etl",
            "--bin",
            "bootstrap",
            "--target",
            LAMBDA_TARGET,
        ])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!(
            "building the Lambda bootstrap failed (needs `rustup target add {LAMBDA_TARGET}` and musl-gcc from Debian's musl-tools; scripts/setup-rust installs both)"
        );
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target_dir
        .join(LAMBDA_TARGET)
        .join("release")
        .join("bootstrap"))
}

/// The Lambda zip: one entry, `bootstrap`, executable (Lambda refuses it otherwise), with a
/// fixed timestamp so the same binary always gives the same bytes and hash.
pub fn lambda_zip(bootstrap: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default())
        .unix_permissions(0o755);
    zip.start_file("bootstrap", options)?;
    zip.write_all(bootstrap)?;
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn the_zip_is_deterministic_and_its_bootstrap_executable() {
        let a = lambda_zip(b"\x7fELF binary").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = lambda_zip(b"\x7fELF binary").unwrap();
        assert_eq!(a, b, "same input, same bytes (no timestamps)");
        assert_ne!(
            Artifact::new(a.clone()).sha256,
            Artifact::new(lambda_zip(b"other").unwrap()).sha256
        );
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_index(0).unwrap();
        assert_eq!(entry.name(), "bootstrap");
        assert_eq!(entry.unix_mode().unwrap() & 0o777, 0o755);
        let mut body = Vec::new();
        entry.read_to_end(&mut body).unwrap();
        assert_eq!(body, b"\x7fELF binary");
    }
}
