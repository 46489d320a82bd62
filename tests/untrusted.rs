//! What a pull request's files or a hostile server can make kayle-sync do: no credential
//! goes to a host they name, and no answer, listing or store call goes on for good.

#[path = "untrusted/api.rs"]
mod api;
#[path = "untrusted/hostile.rs"]
mod hostile;
#[path = "untrusted/vault.rs"]
mod vault;
