use std::process::ExitCode;

fn main() -> ExitCode {
    // Diagnostics for people debugging kayle-sync itself, on stderr, off unless RUST_LOG asks.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    kayle_sync::cli::main()
}
