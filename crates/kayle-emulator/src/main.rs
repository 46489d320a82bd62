//! The `kayle-emulator` binary: serves the emulated Kayle webhook API on a local address.

#![allow(clippy::disallowed_macros, reason = "the binary says where it listens")]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use kayle_emulator::{Config, Emulator};

/// An in-memory emulator of the Kayle ID webhook API, with fault injection.
#[derive(Debug, Parser)]
#[command(name = "kayle-emulator", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    /// Bearer token to accept (it has both webhook scopes).
    #[arg(long, default_value = "kk_test")]
    token: String,
    /// Keep state in this JSON file (loaded at start, rewritten after every change).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Latency added to every API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Divide the waits of the delivery retry schedule by this (6000 makes 5 minutes 50 ms).
    #[arg(long, default_value_t = 1)]
    delivery_time_scale: u32,
    /// Serve without the /_emulator/ admin API, which shows every secret and takes faults
    /// from any local process.
    #[arg(long)]
    no_admin: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = Config::test(&args.token);
    config.state_file = args.state.clone();
    config.admin_routes = !args.no_admin;
    let emulator = Emulator::new(config).with_context(|| match &args.state {
        Some(path) => format!("loading state from {}", path.display()),
        None => "starting the emulator".to_string(),
    })?;
    emulator.set_latency(Duration::from_millis(args.latency_ms));
    emulator.set_delivery_time_scale(args.delivery_time_scale);
    let server = emulator
        .serve(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    eprintln!("kayle-emulator listening on {}", server.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
