//! What a pull request's files or a hostile server can make kayle-sync do: no credential
//! goes to a host they name, and no answer, listing or store call goes on for good.

#[path = "untrusted/api.rs"]
mod api;
#[cfg(feature = "aws")]
#[path = "untrusted/aws.rs"]
mod aws;
#[path = "untrusted/cli.rs"]
mod cli;
#[path = "untrusted/hostile.rs"]
mod hostile;
mod support;
#[path = "untrusted/vault.rs"]
mod vault;
