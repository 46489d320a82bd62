//! The embedded sandbox: the Kayle API emulator run in-process on a loopback port, its state
//! kept in a file under the config directory, so kayle-sync can be tried with no account.

use std::path::{Path, PathBuf};

use kayle_emulator::{Config, Emulator, Server, Token};
use secrecy::SecretString;

/// Where the sandbox keeps its state, relative to the config directory. Hidden, so the
/// manifest loader never reads it.
pub const STATE_FILE: &str = ".kayle-sync/sandbox.json";

/// The sandbox's one API token; it guards nothing, the server only listens on loopback.
const TOKEN: &str = "kk_sandbox";

/// The lock that keeps a second kayle-sync from running the same sandbox at once (each would
/// hold its own copy of the state, and the last to write would win).
const LOCK_FILE: &str = ".kayle-sync/sandbox.lock";

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    server: Server,
    state_file: PathBuf,
    /// Held open, and locked, for as long as the sandbox runs.
    _lock: std::fs::File,
}

impl Sandbox {
    /// Starts the emulator on `127.0.0.1` with the state kept under `config_dir`.
    pub async fn start(config_dir: &Path) -> std::io::Result<Sandbox> {
        let state_file = config_dir.join(STATE_FILE);
        if let Some(parent) = state_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let lock = lock(&config_dir.join(LOCK_FILE))?;
        // The state holds signing secrets: keep it out of the user's git.
        let ignore = config_dir.join(".kayle-sync/.gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# kayle-sync's sandbox state holds secrets\n*\n")?;
        }
        let emulator = Emulator::new(Config {
            tokens: vec![Token {
                value: TOKEN.to_owned(),
                read: true,
                write: true,
                organization_id: "org_sandbox".to_owned(),
            }],
            allow_loopback_urls: true,
            state_file: Some(state_file.clone()),
        })?;
        let server = emulator.serve("127.0.0.1:0").await?;
        Ok(Sandbox {
            server,
            state_file,
            _lock: lock,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn token(&self) -> SecretString {
        SecretString::from(TOKEN)
    }

    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// Takes an exclusive lock on `path`, failing at once if another process holds it.
fn lock(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    // SAFETY: flock on a descriptor this function owns; no memory is shared.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if locked {
        Ok(file)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            format!(
                "another kayle-sync is using this sandbox ({}); wait for it to finish",
                path.display()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sandbox::start(dir.path()).await.unwrap();
        let ignore = std::fs::read_to_string(dir.path().join(".kayle-sync/.gitignore")).unwrap();
        assert!(
            ignore.lines().any(|line| line == "*"),
            "the state stays out of git"
        );
        let second = Sandbox::start(dir.path()).await;
        let err = second
            .err()
            .expect("a second sandbox on the same directory is refused");
        assert!(err.to_string().contains("another kayle-sync"), "{err}");
        first.stop().await;
        let again = Sandbox::start(dir.path())
            .await
            .expect("free again once stopped");
        assert!(again.url().starts_with("http://127.0.0.1:"));
        again.stop().await;
    }
}
