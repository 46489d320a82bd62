//! kayle-sync keeps the webhook endpoints of a Kayle ID organization exactly as a directory of
//! YAML files says: read the desired state, read the live state, show the difference, apply it,
//! and hand every newly issued signing secret to the secret store the receiver reads.

pub mod api;
pub mod apply;
#[allow(
    clippy::disallowed_macros,
    reason = "the command line owns stdout and stderr (clippy.toml)"
)]
pub mod cli;
pub mod credentials;
mod files;
pub mod http;
#[cfg(test)]
mod layers;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod plan;
pub mod probe;
pub mod read;
pub mod redact;
pub mod report;
pub mod sink;
pub mod status;
pub mod watch;
