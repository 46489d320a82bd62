//! `kayle-sync completions SHELL` and `kayle-sync man`: shell completions and the manual page,
//! generated from the same definitions as the command line itself.

use std::io::Write;

use clap::CommandFactory;

use super::Outcome;
use super::args::{Cli, CompletionsArgs};

/// Writes the completion script for the shell asked for.
pub fn completions(args: &CompletionsArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    // Generated into memory first: clap_complete panics when its writer fails (a closed pipe,
    // a full disk), and a write error here is reported like any other.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "kayle-sync", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(Outcome::Success)
}

/// Writes the manual page of kayle-sync and its commands, in roff.
pub fn man(out: &mut dyn Write) -> anyhow::Result<Outcome> {
    clap_mangen::Man::new(Cli::command()).render(out)?;
    Ok(Outcome::Success)
}
