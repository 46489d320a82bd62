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
    let requested = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off"));
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
                .with_filter(requested)
                .with_filter(redacted),
        )
        .init();
    kayle_sync::cli::main()
}
