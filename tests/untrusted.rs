//! What a pull request's files or a hostile server can make kayle-sync do: no credential
//! goes to a host they name, and no answer, listing or store call goes on for good.

mod api;
#[cfg(feature = "aws")]
mod aws;
mod cli;
mod hostile;
mod vault;
