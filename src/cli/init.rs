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

/// The files `init` writes, relative to the directory.
const FILES: [(&str, &str); 3] = [
    ("kayle-sync.yaml", PROJECT),
    ("endpoints/example.yaml", MANIFEST),
    (".gitignore", GITIGNORE),
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
    for (name, text) in FILES {
        write_new(&dir.join(name), text)?;
    }
    let shown = dir.display();
    writeln!(
        out,
        "Wrote kayle-sync.yaml, endpoints/example.yaml and .gitignore in {shown}.\n\
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
