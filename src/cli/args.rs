//! The command line as clap sees it. Plain data: turning it into configuration happens elsewhere.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The environment variables kayle-sync reads, for `--help` and the man page.
pub const ENVIRONMENT: &str = "\
Environment:
  KAYLE_API_URL            The Kayle API to use; wins over api.url in kayle-sync.yaml.
  KAYLE_API_KEY            The API key (the variable api.token_env names; this by default).
  KAYLE_SYNC_HTTP_TIMEOUT  Time limit of one HTTP request, e.g. 10s (default 30s).
  KAYLE_SYNC_LATE_WINDOW   How long a request whose answer was lost may still land (default 15m).
  NO_COLOR                 Set and non-empty: no color under --color auto.
  CI                       Set and non-empty: apply shows no live count, even on a terminal.
  RUST_LOG                 Diagnostics on stderr, e.g. debug (never a body or a secret).";

#[derive(Debug, Parser)]
#[command(
    name = "kayle-sync",
    version = env!("KAYLE_SYNC_VERSION"),
    about,
    propagate_version = true,
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// When to color output: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a config directory: a project file, an example manifest and a .gitignore.
    Init(InitArgs),
    /// Parse and check every file offline and report every problem at once.
    Validate(ValidateArgs),
    /// Read the live state and print what apply would change.
    Plan(PlanArgs),
    /// Plan, then make the organization match.
    Apply(ApplyArgs),
    /// Apply on every change under DIR, and correct drift on an interval.
    Watch(WatchArgs),
    /// Write the live endpoints as manifests.
    Export(ExportArgs),
    /// Rotate an endpoint's signing secret now and write the new one to its sink.
    Rotate(RotateArgs),
    /// Send a receiver what Kayle would (a signed test event, a forged one, a stale one) and
    /// say whether it verifies and decrypts as Kayle's docs say.
    Probe(ProbeArgs),
    /// Per endpoint: its active key, whether its sink holds the current secret, and its
    /// deliveries over a window; exits 1 when something is wrong.
    Status(StatusArgs),
    /// Print a completion script for SHELL (e.g. `kayle-sync completions bash`).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `kayle-sync man > kayle-sync.1`.
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// For output that is not a plan (diagnostics, log lines): markdown does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LineFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
}

#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Limit the work to these endpoint keys (repeatable).
    #[arg(long = "target", value_name = "KEY")]
    pub targets: Vec<String>,
    /// Delete managed endpoints that no manifest declares any more.
    #[arg(long)]
    pub prune: bool,
    /// Reveal every managed endpoint's signing secret and compare it with its readable sink;
    /// a difference is a change that apply repairs. One extra request per endpoint, and the
    /// API key needs write scope (reveal is a write-scope call): meant for a nightly job.
    #[arg(long)]
    pub verify_secrets: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Save the plan (and a fingerprint of the live state) for `apply --plan`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when changes are pending, 0 when none, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Apply without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Apply a plan saved by `plan --out`, exactly, refusing if the live state moved.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
    /// Allow a plan the deletion guard refuses.
    #[arg(long)]
    pub force: bool,
    /// After a rotation, how long to wait for the receiver to accept the new secret (after
    /// the sink's reload command), e.g. 30s; then deliveries that failed meanwhile are retried
    /// at once. 0 sends no probe. A receiver that does not answer from here is not waited for.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = settle_duration)]
    pub settle: std::time::Duration,
    /// How many API requests to have in flight at once (endpoints are worked on up to four
    /// times as many at once, so one writing its secret does not leave a request slot idle).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Reconcile this often to correct drift, e.g. 30s or 5m.
    #[arg(long, default_value = "5m", value_parser = positive_duration)]
    pub interval: std::time::Duration,
    /// Also reconcile with `--verify-secrets` this often, e.g. 24h: reveal every managed
    /// secret and compare it with its readable sink (one request per endpoint). Off unless set.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub verify_interval: Option<std::time::Duration>,
    /// Plan and print only; never apply.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete managed endpoints that no manifest declares any more.
    #[arg(long)]
    pub prune: bool,
    /// Allow a plan the deletion guard refuses.
    #[arg(long)]
    pub force: bool,
    /// After a rotation, how long to wait for the receiver to accept the new secret (after
    /// the sink's reload command), e.g. 30s; then deliveries that failed meanwhile are retried
    /// at once. 0 sends no probe. A receiver that does not answer from here is not waited for.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = settle_duration)]
    pub settle: std::time::Duration,
    /// How many API requests may be in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Log lines as text or JSON.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
    /// Serve /healthz and /metrics on this address, e.g. 127.0.0.1:9090.
    #[arg(long, value_name = "ADDR")]
    pub health_addr: Option<std::net::SocketAddr>,
    /// With --health-addr: refresh the delivery metrics (what `status` reports) this often.
    /// Each refresh lists the organization's deliveries, so not on every scrape.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = positive_duration, requires = "health_addr")]
    pub status_interval: std::time::Duration,
    /// With --health-addr: count the deliveries created this far back in the metrics.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = positive_duration, requires = "health_addr")]
    pub status_window: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The config directory whose kayle-sync.yaml names the API.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the manifests.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The config directory to start (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The endpoint key whose secret to rotate.
    pub key: String,
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The config directory, as an option (the positional DIR is the way every command takes it).
    #[arg(long = "dir", value_name = "DIR", hide = true, conflicts_with = "dir")]
    pub dir_option: Option<PathBuf>,
    /// Rotate without asking (required when stdin is not a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// After a rotation, how long to wait for the receiver to accept the new secret (after
    /// the sink's reload command), e.g. 30s; then deliveries that failed meanwhile are retried
    /// at once. 0 sends no probe. A receiver that does not answer from here is not waited for.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = settle_duration)]
    pub settle: std::time::Duration,
}

impl RotateArgs {
    /// The config directory, given as `DIR` or as the older `--dir DIR`.
    pub fn dir(&self) -> &std::path::Path {
        self.dir_option.as_deref().unwrap_or(&self.dir)
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The endpoint key whose receiver to probe. With --all, leave it out: the one positional
    /// argument is then DIR.
    #[arg(required_unless_present = "all")]
    pub key: Option<String>,
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Send to this URL (an internal or staging address of the same receiver) instead of the
    /// endpoint's live URL.
    #[arg(long, value_name = "URL", conflicts_with = "all")]
    pub url: Option<String>,
    /// Probe every managed endpoint.
    #[arg(long)]
    pub all: bool,
    /// How many endpoints to probe at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// How to print the verdicts.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
}

impl ProbeArgs {
    /// The endpoint key, unless --all.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref().filter(|_| !self.all)
    }

    /// The config directory: with --all, a lone positional argument is DIR.
    pub fn dir(&self) -> &std::path::Path {
        match &self.key {
            Some(dir) if self.all && self.dir == std::path::Path::new(".") => {
                std::path::Path::new(dir)
            }
            _ => &self.dir,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The config directory.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Count the deliveries created this far back, e.g. 1h or 7d (older ones still pending
    /// are counted too).
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = positive_duration)]
    pub since: std::time::Duration,
    /// Limit the report to these endpoint keys (repeatable).
    #[arg(long = "target", value_name = "KEY")]
    pub targets: Vec<String>,
    /// Reveal every reported endpoint's signing secret and compare it with its readable sink.
    /// One extra request per endpoint, and the API key needs write scope (reveal is a
    /// write-scope call). Without it, sinks are checked for presence only.
    #[arg(long)]
    pub verify_secrets: bool,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = LineFormat::Text)]
    pub format: LineFormat,
}

/// `--settle`: a duration such as `30s` or `2m`, or `0` to send no probe.
fn settle_duration(text: &str) -> Result<std::time::Duration, String> {
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|err| err.to_string())
}

/// A duration such as `30s` or `5m`, of at least a second: a shorter interval would reconcile
/// (and send requests) back to back.
fn positive_duration(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration < std::time::Duration::from_secs(1) => {
            Err("must be at least 1s".to_owned())
        }
        Ok(duration) => Ok(duration),
        Err(err) => Err(err.to_string()),
    }
}
