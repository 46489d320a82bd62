use std::process::ExitCode;

fn main() -> ExitCode {
    kayle_sync::cli::main()
}
