//! Parses the command line, runs the command and maps the outcome to an exit code.

mod apply;
mod arena;
mod args;
mod completions;
mod export;
mod init;
mod plan;
mod probe;
mod rotate;
mod session;
mod status;
mod terminal;
mod tracing_setup;
mod validate;
mod watch;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub use args::{Cli, ColorChoice, Command, Format};
use clap::Parser;
pub use terminal::Terminal;

use crate::manifest::{Diagnostic, shell_word};
use crate::model::SinkConfig;

/// Exit code for a command-line usage error (clap's default 2 is reserved for
/// `plan --detailed-exitcode`).
pub const EXIT_USAGE: u8 = 64;

/// A command line that cannot be carried out as given (flags that conflict, a value that names
/// nothing): exits [`EXIT_USAGE`], as clap's own usage errors do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The error for an endpoint key that no manifest in `dir` declares, with the nearest one.
pub(crate) fn undeclared_key<'k>(
    key: &str,
    dir: &Path,
    declared: impl Iterator<Item = &'k String>,
) -> UsageError {
    let known: Vec<&str> = declared.map(String::as_str).collect();
    let suggestion = match crate::manifest::did_you_mean(key, &known) {
        Some(near) => format!("; did you mean {near}?"),
        None => String::new(),
    };
    UsageError(format!(
        "{key} is not declared in {}{suggestion}",
        dir.display()
    ))
}

/// What a command wants the process to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `plan --detailed-exitcode` found pending changes.
    ChangesPending,
    /// The command ran to the end but something failed; it has already said what.
    Failed,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            Outcome::ChangesPending => 2,
        }
    }
}

/// The process's entry point. Call it from `main` before any other thread exists: it changes
/// the environment, and takes the project's credentials out of it (see
/// [`crate::credentials`]).
pub fn main() -> ExitCode {
    // SAFETY: `main` calls this first thing, and no thread has been started.
    unsafe { tracing_setup::unset_dangerous_logging() };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    if let Some(dir) = config_dir(&cli.command) {
        let names = credential_variables(dir);
        // SAFETY: `main` calls this first thing, and no thread has been started: the async
        // runtime, and with it every thread kayle-sync runs, starts in `run` below.
        unsafe { crate::credentials::take(&names) };
    }
    crate::credentials::protect_process();
    let terminal = Terminal::detect(cli.color);
    tracing_setup::init(terminal.stderr_color);
    // A reader that stopped reading (`plan | head -1`) is not an error of ours. watch is the
    // exception: its log going nowhere stops it, and a supervisor must see that it failed.
    let quiet_on_broken_pipe = !matches!(cli.command, Command::Watch(_));
    match run(cli, terminal) {
        Ok(outcome) => ExitCode::from(outcome.code()),
        Err(err) if quiet_on_broken_pipe && is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            // The chain can quote a server or a file: shown without credentials or control codes.
            eprintln!("error: {}", crate::redact::safe_lines(&format!("{err:#}")));
            let usage = err.chain().any(|cause| cause.is::<UsageError>());
            ExitCode::from(if usage { EXIT_USAGE } else { 1 })
        }
    }
}

/// Whether `err` is a write into a pipe whose reader has gone.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The config directory of a command that reads credentials (`validate` reads none).
fn config_dir(command: &Command) -> Option<&Path> {
    match command {
        Command::Validate(_) | Command::Init(_) | Command::Completions(_) | Command::Man => None,
        Command::Plan(args) => Some(&args.dir),
        Command::Apply(args) => Some(&args.dir),
        Command::Watch(args) => Some(&args.dir),
        Command::Export(args) => Some(&args.dir),
        Command::Rotate(args) => Some(args.dir()),
        Command::Probe(args) => Some(args.dir()),
        Command::Status(args) => Some(&args.dir),
    }
}

/// The variables holding the credentials the project in `dir` reads: the API token's and
/// each vault sink's. When the project file cannot be read, the default API token's (the
/// command then stops before reading any).
fn credential_variables(dir: &Path) -> Vec<String> {
    let Ok(project) = crate::manifest::load_project(dir) else {
        return vec![crate::manifest::DEFAULT_TOKEN_ENV.to_owned()];
    };
    let mut names = vec![project.api.token_env];
    names.extend(project.sinks.values().filter_map(|sink| match sink {
        SinkConfig::Vault { token_env, .. } => Some(token_env.clone()),
        _ => None,
    }));
    names
}

/// The command line a user in the wrong directory is told to try, with the config directory
/// left off: the subcommand and what it cannot do without. With the directory the command
/// reads.
fn retry_line(command: &Command) -> Option<(String, &Path)> {
    let (words, dir) = match command {
        Command::Init(_) | Command::Completions(_) | Command::Man => return None,
        Command::Validate(args) => ("validate".to_owned(), &args.dir),
        Command::Plan(args) => ("plan".to_owned(), &args.dir),
        Command::Apply(args) => match &args.plan {
            Some(plan) => (
                format!("apply --plan {}", shell_word(&plan.display().to_string())),
                &args.dir,
            ),
            None => ("apply".to_owned(), &args.dir),
        },
        Command::Watch(args) => ("watch".to_owned(), &args.dir),
        Command::Export(args) => ("export".to_owned(), &args.dir),
        Command::Status(args) => ("status".to_owned(), &args.dir),
        Command::Rotate(args) => {
            let key = shell_word(&args.key);
            return Some((format!("kayle-sync rotate {key}"), args.dir()));
        }
        Command::Probe(args) => {
            let words = match args.key() {
                Some(key) => format!("kayle-sync probe {}", shell_word(key)),
                None => "kayle-sync probe --all".to_owned(),
            };
            return Some((words, args.dir()));
        }
    };
    Some((format!("kayle-sync {words}"), dir.as_path()))
}

/// The error for a command run where there is no project file, pointing at any nearby.
fn missing_project(command: &Command) -> Option<Diagnostic> {
    let (line, dir) = retry_line(command)?;
    crate::manifest::missing_project(dir, Some(&line))
}

/// Runs the command, with the streams and environment as `terminal` found them.
pub fn run(cli: Cli, terminal: Terminal) -> anyhow::Result<Outcome> {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    // Checked before anything else is read: in the wrong directory, that is the one thing to say.
    let missing = missing_project(&cli.command);
    match &cli.command {
        Command::Validate(args) => return validate::run(args, missing, &mut out, &mut err),
        Command::Init(args) => return init::run(args, &mut out, &mut err),
        Command::Completions(args) => return completions::completions(args, &mut out),
        Command::Man => return completions::man(&mut out),
        _ => {}
    }
    if let Some(missing) = missing {
        writeln!(
            err,
            "error: {}",
            crate::redact::safe_lines(&missing.to_string())
        )?;
        return Ok(Outcome::Failed);
    }
    // One thread drives every request: kayle-sync waits on the network and on sinks, and
    // blocking sink work goes to tokio's blocking pool. A worker per core would sit idle, each
    // with its stack and its own allocator arena; the blocking pool's threads share one.
    arena::one_arena();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("kayle-sync-io")
        .build()?;
    runtime.block_on(async {
        match &cli.command {
            Command::Validate(_) | Command::Init(_) | Command::Completions(_) | Command::Man => {
                unreachable!("handled above")
            }
            Command::Plan(args) => plan::run(args, terminal, &mut out, &mut err).await,
            Command::Apply(args) => apply::run(args, terminal, &mut out, &mut err).await,
            Command::Export(args) => export::run(args, &mut out, &mut err).await,
            Command::Rotate(args) => rotate::run(args, terminal, &mut out, &mut err).await,
            Command::Probe(args) => probe::run(args, &mut out, &mut err).await,
            Command::Status(args) => status::run(args, &mut out, &mut err).await,
            Command::Watch(args) => watch::run(args, &mut err).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
