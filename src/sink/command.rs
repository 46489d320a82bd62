//! The `command` sink: runs an argv list with the secret on its stdin, and nowhere else.

use std::process::Stdio;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::model::{SecretSink, SinkError};

/// How much of the command's stderr is read; the rest is drained unread.
const STDERR_READ_LIMIT: u64 = 64 * 1024;
/// How much of the command's stderr an error message shows.
const STDERR_SHOWN_CHARS: usize = 2000;
/// What a secret echoed on stderr is replaced with.
const SCRUBBED: &str = "(sensitive)";

/// A command run once per secret. Write-only: see [`crate::sink`].
#[derive(Debug)]
pub struct CommandSink {
    sink: String,
    argv: Vec<String>,
    timeout: Duration,
    /// Environment variables the command must not inherit (the Kayle API token, store
    /// tokens): it gets the secret it is handed, and no other credential of ours.
    hidden_env: Vec<String>,
}

impl CommandSink {
    /// A sink named `sink` running `argv` (`{name}` replaced in each argument); `argv` must
    /// not be empty.
    pub fn new(sink: &str, argv: Vec<String>, timeout: Duration) -> Result<Self, SinkError> {
        if argv.is_empty() {
            return Err(SinkError::Config {
                sink: sink.to_owned(),
                message: "the command is empty".to_owned(),
            });
        }
        Ok(CommandSink {
            sink: sink.to_owned(),
            argv,
            timeout,
            hidden_env: Vec::new(),
        })
    }

    /// Keeps the variables `names` out of the command's environment.
    pub fn hiding_env(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.hidden_env.extend(names);
        self
    }

    /// Runs the argv as written, with nothing on stdin: a sink's `reload`, after `written` went
    /// to the sink. `written` is never handed to it, and is scrubbed from what an error shows.
    pub async fn run_without_input(&self, written: &SecretString) -> Result<(), SinkError> {
        self.run(&self.argv, written, false).await
    }

    fn error(&self, message: String) -> SinkError {
        SinkError::Store {
            sink: self.sink.clone(),
            message,
        }
    }

    /// Runs `argv`, handing it `value` on stdin when `feed`; `value` is scrubbed from what an
    /// error shows of its stderr either way.
    async fn run(
        &self,
        argv: &[String],
        value: &SecretString,
        feed: bool,
    ) -> Result<(), SinkError> {
        let program = &argv[0];
        let mut command = Command::new(program);
        for name in &self.hidden_env {
            command.env_remove(name);
        }
        let mut child = command
            .args(&argv[1..])
            .stdin(if feed { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so a timeout can stop whatever the command started too.
            .process_group(0)
            .spawn()
            .map_err(|e| self.error(format!("cannot run `{program}`: {e}")))?;

        let stdin = child.stdin.take();
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let feed = async move {
            let Some(mut stdin) = stdin else {
                return Ok(());
            };
            // A command that exits without reading all of stdin is judged by its exit status.
            match stdin.write_all(value.expose_secret().as_bytes()).await {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
                _ => Ok(()),
            }
            // `stdin` is dropped here, which closes the pipe: the command sees end of input.
        };
        let collect = async move {
            let mut bytes = Vec::new();
            let mut limited = (&mut stderr).take(STDERR_READ_LIMIT);
            limited.read_to_end(&mut bytes).await?;
            tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await?;
            Ok::<_, std::io::Error>(bytes)
        };
        let work = async {
            let (fed, collected, status) = tokio::join!(feed, collect, child.wait());
            fed.map_err(|e| self.error(format!("writing to `{program}`'s stdin failed: {e}")))?;
            let stderr = collected
                .map_err(|e| self.error(format!("reading `{program}`'s stderr failed: {e}")))?;
            let status = status.map_err(|e| self.error(format!("waiting for `{program}`: {e}")))?;
            Ok::<_, SinkError>((status, stderr))
        };
        let (status, stderr) = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                if let Some(pid) = child.id() {
                    kill_group(pid);
                }
                // kill_on_drop covers the child itself should the group kill have failed.
                let _ = child.start_kill();
                return Err(self.error(format!(
                    "`{program}` did not finish within {} seconds and was killed",
                    self.timeout.as_secs()
                )));
            }
        };
        if status.success() {
            return Ok(());
        }
        let shown = shown_stderr(&stderr, value);
        let mut message = format!("`{program}` failed ({status})");
        if !shown.is_empty() {
            message.push_str(": ");
            message.push_str(&shown);
        }
        Err(self.error(message))
    }
}

/// Sends SIGKILL to the process group `pid` leads.
fn kill_group(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative pid
    // addresses the process group the command was started in.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
}

/// The command's stderr as an error may show it: secret scrubbed, trimmed, bounded.
fn shown_stderr(stderr: &[u8], value: &SecretString) -> String {
    let mut text = String::from_utf8_lossy(stderr).into_owned();
    let secret = value.expose_secret();
    if !secret.is_empty() {
        text = text.replace(secret, SCRUBBED);
        // The same secret encoded, as a debugging command might print it.
        use base64::Engine as _;
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        for encoded in [
            STANDARD.encode(secret),
            STANDARD_NO_PAD.encode(secret),
            URL_SAFE_NO_PAD.encode(secret),
            hex.clone(),
            hex.to_uppercase(),
        ] {
            text = text.replace(&encoded, SCRUBBED);
        }
        // A multi-line secret (a PEM key) may be echoed line by line or reflowed.
        for line in secret.lines().map(str::trim).filter(|l| l.len() >= 8) {
            text = text.replace(line, SCRUBBED);
        }
    }
    // Lines are kept (a command's message can have several); credential-shaped text and
    // control codes are not.
    let text = crate::redact::printable_lines(&crate::redact::scrub(text.trim(), &[])).into_owned();
    let text = text.trim();
    match text.char_indices().nth(STDERR_SHOWN_CHARS) {
        Some((cut, _)) => format!("{} [stderr truncated]", &text[..cut]),
        None => text.to_owned(),
    }
}

#[async_trait::async_trait]
impl SecretSink for CommandSink {
    fn name(&self) -> &str {
        &self.sink
    }

    /// The program is found (on `PATH` when it names no directory) and executable.
    async fn check_writable(&self) -> Result<(), SinkError> {
        let program = std::path::Path::new(&self.argv[0]);
        let candidates: Vec<std::path::PathBuf> = if program.components().count() > 1 {
            vec![program.to_path_buf()]
        } else {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .collect()
        };
        let executable = |path: &std::path::PathBuf| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        };
        if candidates.iter().any(executable) {
            return Ok(());
        }
        Err(SinkError::Config {
            sink: self.sink.clone(),
            message: format!(
                "the command `{}` is not an executable file{}",
                crate::redact::safe_line(&self.argv[0]),
                if program.components().count() > 1 {
                    ""
                } else {
                    " on PATH"
                }
            ),
        })
    }

    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError> {
        let argv: Vec<String> = self
            .argv
            .iter()
            .map(|a| a.replace("{name}", name))
            .collect();
        self.run(&argv, value, true).await
    }

    /// A command cannot be asked what it holds.
    async fn contains(&self, _name: &str) -> Result<Option<bool>, SinkError> {
        Ok(None)
    }
}
