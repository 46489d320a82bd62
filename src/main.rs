use std::process::ExitCode;

use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, filter};

fn main() -> ExitCode {
    // The AWS SDK logs whole request bodies, secrets included, when these are set.
    for variable in ["LOG_SIGNABLE_BODY", "LOG_SENSITIVE_BODIES"] {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::remove_var(variable) };
    }
    // Diagnostics for people debugging kayle-sync itself, on stderr, off unless RUST_LOG asks.
    // A bare level (`RUST_LOG=debug`) means kayle-sync's own events, not every library's.
    let requested = match std::env::var("RUST_LOG") {
        Ok(level) if !level.is_empty() && !level.contains(['=', ',']) => {
            EnvFilter::try_new(format!("kayle_sync={level},kayle_emulator={level}"))
                .unwrap_or_else(|_| EnvFilter::new("off"))
        }
        _ => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off")),
    };
    // Colour only on a terminal, and never when NO_COLOR or `--color never` asks.
    use std::io::IsTerminal;
    let args: Vec<String> = std::env::args().collect();
    let never = args
        .windows(2)
        .any(|pair| pair[0] == "--color" && pair[1] == "never")
        || args.iter().any(|arg| arg == "--color=never");
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && !never;
    // The AWS SDK's trace events print request bodies (a secret being stored, for one), and
    // its signer prints what it signs: never shown, whatever RUST_LOG says.
    let redacted = filter::filter_fn(|meta| {
        let target = meta.target();
        let from_aws = target.starts_with("aws_smithy") || target.starts_with("aws_sdk");
        !(target.starts_with("aws_sigv4") || from_aws && *meta.level() == tracing::Level::TRACE)
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(ansi)
                .with_filter(requested)
                .with_filter(redacted),
        )
        .init();
    kayle_sync::cli::main()
}
