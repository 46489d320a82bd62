//! Puts the commit kayle-sync was built from into `--version`, when it is built from a git
//! checkout; a packaged crate (no `.git`) or a machine without git gets the bare version.

#![allow(
    clippy::disallowed_macros,
    reason = "a build script speaks to cargo on stdout"
)]

use std::path::Path;
use std::process::Command;

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    println!("cargo:rerun-if-changed=build.rs");
    // Only this crate's own checkout: a crate unpacked inside some other repository must not
    // take that repository's commit.
    let commit = Path::new(&manifest_dir)
        .join(".git")
        .exists()
        .then(|| commit(&manifest_dir))
        .flatten();
    let full = match commit {
        Some(commit) => format!("{version} ({commit})"),
        None => version,
    };
    println!("cargo:rustc-env=KAYLE_SYNC_VERSION={full}");
}

/// The short commit of HEAD, and a rebuild whenever HEAD moves.
fn commit(dir: &str) -> Option<String> {
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8(output.stdout).ok()?;
        (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
    };
    let commit = git(&["rev-parse", "--short", "HEAD"])?;
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref());
    for name in watched {
        // A path that does not exist would make cargo run this script on every build.
        if let Some(path) = git(&["rev-parse", "--git-path", name])
            .map(|path| Path::new(dir).join(path))
            .filter(|path| path.exists())
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Some(commit)
}
