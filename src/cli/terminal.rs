//! What kayle-sync learns about where it runs (which streams are terminals, `NO_COLOR`, `CI`,
//! `--color`), read once at start; renderers get the plain answers.

use std::ffi::OsStr;
use std::io::IsTerminal;

use super::ColorChoice;

/// How the output streams may be written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// Color on stdout.
    pub stdout_color: bool,
    /// Color on stderr.
    pub stderr_color: bool,
    /// A person can answer a prompt on stdin.
    pub interactive: bool,
    /// Stdout is a terminal: what it shows is seen before a prompt is answered.
    pub stdout_terminal: bool,
    /// A live count may be drawn on stderr: a terminal, and not a CI log.
    pub live_progress: bool,
}

impl Terminal {
    /// A prompt's answerer does not see stdout (a file or a pipe): what the prompt asks about
    /// goes to stderr too.
    pub fn answerer_misses_stdout(self) -> bool {
        self.interactive && !self.stdout_terminal
    }

    /// Reads the streams and the environment.
    pub fn detect(choice: ColorChoice) -> Terminal {
        let no_color = std::env::var_os("NO_COLOR");
        let ci = std::env::var_os("CI");
        let stderr_is_terminal = std::io::stderr().is_terminal();
        let stdout_terminal = std::io::stdout().is_terminal();
        Terminal {
            stdout_color: color_enabled(choice, stdout_terminal, no_color.as_deref()),
            stdout_terminal,
            stderr_color: color_enabled(choice, stderr_is_terminal, no_color.as_deref()),
            interactive: std::io::stdin().is_terminal(),
            live_progress: stderr_is_terminal && ci.as_deref().is_none_or(OsStr::is_empty),
        }
    }
}

/// Whether to color output. `always` and `never` decide alone; `auto` colors a terminal unless
/// `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
fn color_enabled(choice: ColorChoice, is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::{ColorChoice, color_enabled};

    #[test]
    fn color_follows_the_choice_the_terminal_and_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(color_enabled(ColorChoice::Auto, true, None));
        assert!(color_enabled(ColorChoice::Auto, true, empty));
        assert!(!color_enabled(ColorChoice::Auto, true, set));
        assert!(!color_enabled(ColorChoice::Auto, false, None));
        assert!(color_enabled(ColorChoice::Always, false, set));
        assert!(!color_enabled(ColorChoice::Never, true, None));
    }
}
