//! The integration tests, as one test binary: every file here is a module of it, so the crate
//! and its dependencies (the AWS SDK among them) are linked once, not once per file.
//! `dotenv_loaders` and `sink_services` are binaries of their own (see Cargo.toml): their own
//! `main` decides at run time which tests are ignored.
//!
//! One process runs every test on parallel threads, so no test may change what the process
//! shares (its environment, working directory, umask, signal handlers): a test that needs
//! another environment gives it to a child process.

// Helpers, shared by the modules below.
mod faults_support;
mod hostile_support;
mod receiver_support;
mod sink_contract;
mod support;
mod watch_support;

mod api_client;
mod api_deliveries;
mod cli_docs;
mod e2e_cli;
mod e2e_exit_codes;
mod e2e_export_rotate;
mod e2e_faults;
mod e2e_git;
mod e2e_init;
mod e2e_key_rotation;
mod e2e_late_landings;
mod e2e_no_secret_in_output;
mod e2e_plan_apply;
mod e2e_plan_details;
mod e2e_preflight;
mod e2e_probe;
mod e2e_rotation_receiver;
mod e2e_secrets;
mod e2e_status;
mod e2e_undeclared;
mod e2e_unsettled;
mod e2e_wrong_dir;
mod faults;
mod fixtures_only;
mod manifest_fixtures;
mod manifest_load;
mod sink_command;
mod sink_files;
mod untrusted;
mod validate_cli;
mod validate_schemas;
mod watch;
mod watch_files;
