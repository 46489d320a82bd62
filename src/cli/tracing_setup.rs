//! Diagnostics for people debugging kayle-sync itself: `tracing` events on stderr, off unless
//! `RUST_LOG` asks, and never what a secret store's SDK would print of a secret.

use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, filter};

/// Unsets the variables that make the AWS SDK log whole request bodies, secrets included.
///
/// # Safety
/// No other thread may exist yet (see [`std::env::remove_var`]).
pub unsafe fn unset_dangerous_logging() {
    for variable in ["LOG_SIGNABLE_BODY", "LOG_SENSITIVE_BODIES"] {
        // SAFETY: the caller promises a single thread.
        unsafe { std::env::remove_var(variable) };
    }
}

/// Starts the subscriber. A bare level (`RUST_LOG=debug`) means kayle-sync's own events, not
/// every library's. `ansi`: stderr may be colored.
pub fn init(ansi: bool) {
    let requested = match std::env::var("RUST_LOG") {
        Ok(level) if !level.is_empty() && !level.contains(['=', ',']) => {
            EnvFilter::try_new(format!("kayle_sync={level},kayle_emulator={level}"))
                .unwrap_or_else(|_| EnvFilter::new("off"))
        }
        _ => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("off")),
    };
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
}
