//! `kayle-sync init [DIR]`: a new config directory that validates, plans and applies against
//! the built-in sandbox as it is, with nothing else to set up.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use super::Outcome;
use super::args::InitArgs;

/// The project file: the sandbox, and one dotenv sink under `secrets/`.
const PROJECT: &str = "\
# The kayle-sync project file. See https://github.com/kayle-sync/kayle-sync#how-it-works
api:
  # `sandbox` is an emulator of the Kayle API run by kayle-sync itself, its state kept in
  # .kayle-sync/: no account needed. For the real API: url: https://api.kayle.id, and the
  # API key in the environment variable KAYLE_API_KEY.
  url: sandbox
sinks:
  # Where signing secrets (and generated private keys) are written.
  local:
    type: dotenv
    path: secrets/kayle.env
defaults:
  signing_secret:
    sink: local
";

/// One endpoint, with a key pair kayle-sync generates, so no key file is needed.
const MANIFEST: &str = "\
# A manifest: any *.yaml file in this directory other than kayle-sync.yaml declares endpoints.
endpoints:
  # The key: the endpoint's identity, kept on it as the label kayle-sync:example.
  example:
    url: https://hooks.example.com/kayle/example
    name: Example
    enabled: true
    subscribed_event_types:
      - verification.session.succeeded
      - verification.session.failed
    encryption_keys:
      # kayle-sync generates an RSA key pair on the first apply; the private key goes to the
      # `local` sink as KAYLE_WEBHOOK_PRIVATE_KEY_EXAMPLE, next to the signing secret
      # KAYLE_WEBHOOK_SECRET_EXAMPLE. To bring your own key instead:
      #   - key_id: example-1
      #     public_key_file: keys/example-1.pub.pem
      - key_id: example-1
        generate: true
";

/// Keeps the secrets and the sandbox's state out of version control.
const GITIGNORE: &str = "\
# Written by kayle-sync: secrets, and the sandbox's state and locks.
secrets/
.kayle-sync/
";

/// The files `init` writes, relative to the directory. A `.gitignore` that is there already
/// (a repository's root) gets the missing lines of [`GITIGNORE`] added instead.
const FILES: [(&str, &str); 2] = [
    ("kayle-sync.yaml", PROJECT),
    ("endpoints/example.yaml", MANIFEST),
];

/// Writes the files, or none of them when any is there already.
pub fn run(args: &InitArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let dir = &args.dir;
    let existing: Vec<&str> = FILES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .collect();
    if !existing.is_empty() {
        writeln!(
            err,
            "error: refusing to overwrite {} in {}; nothing was written.",
            existing.join(", "),
            dir.display()
        )?;
        return Ok(Outcome::Failed);
    }
    // Read before anything is written, so that an unreadable one stops init with nothing done.
    let ignore_path = dir.join(".gitignore");
    let ignored = match ignore_path.symlink_metadata() {
        Ok(_) => Some(
            crate::files::read_regular(&ignore_path, 1 << 20)
                .with_context(|| format!("reading {}", ignore_path.display()))?,
        ),
        Err(_) => None,
    };
    for (name, text) in FILES {
        write_new(&dir.join(name), text)?;
    }
    let ignore_note = match ignored {
        None => {
            write_new(&ignore_path, GITIGNORE)?;
            ".gitignore"
        }
        Some(text) => {
            add_missing_lines(&ignore_path, &String::from_utf8_lossy(&text))?;
            "added secrets/ and .kayle-sync/ to .gitignore"
        }
    };
    let shown = dir.display();
    writeln!(
        out,
        "Wrote kayle-sync.yaml, endpoints/example.yaml and {ignore_note} in {shown}.\n\
         \n\
         Next steps:\n  \
         kayle-sync validate {shown}   check the files, offline\n  \
         kayle-sync plan {shown}       see what apply would change (in the sandbox)\n  \
         kayle-sync apply {shown}      create the endpoint; its secrets go to secrets/kayle.env\n\
         \n\
         Then declare your own endpoints in endpoints/, and point api.url at the real API."
    )?;
    Ok(Outcome::Success)
}

/// Appends to the `.gitignore` at `path`, which holds `text`, the lines of [`GITIGNORE`] it
/// does not have yet.
fn add_missing_lines(path: &Path, text: &str) -> anyhow::Result<()> {
    let have: Vec<&str> = text.lines().map(str::trim).collect();
    let missing: Vec<&str> = GITIGNORE
        .lines()
        .filter(|line| !line.starts_with('#') && !have.contains(line))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut added = String::new();
    if !text.is_empty() && !text.ends_with('\n') {
        added.push('\n');
    }
    added.push_str("# Written by kayle-sync: secrets, and the sandbox's state and locks.\n");
    for line in missing {
        added.push_str(line);
        added.push('\n');
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    std::io::Write::write_all(&mut file, added.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Creates `path` (and its directory), never replacing a file that appeared meanwhile.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
