//! Credentials from the environment (the Kayle API token, a Vault token), taken out of the
//! process's environment at start and held as secrets from then on.
//!
//! A command sink runs commands a config directory names; the sink keeps our credentials out
//! of the command's own environment, but the command could still read ours at
//! `/proc/<our pid>/environ`. That file shows the environment block the process started with,
//! which `unsetenv` does not change (it only drops the pointer to the entry). So [`take`]
//! copies each credential into a [`SecretString`], overwrites its value in that block, and
//! removes the variable; and [`protect_process`] makes the process non-dumpable, so that other
//! processes of the same user can neither read its `/proc` files nor attach to it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use secrecy::{ExposeSecret, SecretString};

/// The credentials [`take`] moved out of the environment, by variable name.
static TAKEN: Mutex<BTreeMap<String, SecretString>> = Mutex::new(BTreeMap::new());

fn taken() -> MutexGuard<'static, BTreeMap<String, SecretString>> {
    TAKEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves the variables `names` out of the environment into secrets that [`get`] returns.
/// A variable that is unset, or not valid UTF-8, is left alone.
///
/// # Safety
/// It writes and removes environment variables: no other thread may read or write the
/// environment while it runs. Call it before any thread is started.
pub unsafe fn take(names: &[String]) {
    let mut taken = taken();
    for name in names {
        let Ok(value) = std::env::var(name) else {
            continue;
        };
        // SAFETY: the caller guarantees no other thread touches the environment.
        unsafe {
            wipe(name);
            std::env::remove_var(name);
        }
        taken.insert(name.clone(), SecretString::from(value));
    }
}

/// The credential in the variable `name`: the one [`take`] moved out of the environment, or
/// else the variable's current value.
pub fn get(name: &str) -> Option<SecretString> {
    if let Some(secret) = taken().get(name) {
        return Some(secret.clone());
    }
    std::env::var(name).ok().map(SecretString::from)
}

/// Every credential [`take`] moved out of the environment, by variable name: what a command
/// or a server could still echo, to scrub from what is shown.
pub fn taken_all() -> Vec<(String, SecretString)> {
    taken()
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// A variable read for a token that holds a signing secret or key material instead: a job
/// that exported the secrets kayle-sync writes has such variables, and a file naming one as
/// a token's variable would have the secret sent to the server the token goes to.
#[derive(Debug, thiserror::Error)]
#[error(
    "{variable} holds {what}, not a token: kayle-sync never sends one as a token; set \
     {variable} to the token itself"
)]
pub struct NotAToken {
    /// The variable's name.
    pub variable: String,
    what: &'static str,
}

/// Refuses `value`, read from `variable` to be sent as a token, when it looks like a Kayle
/// signing secret (`whsec_`) or key material (a PEM block), whatever the variable's name.
pub fn check_token(variable: &str, value: &str) -> Result<(), NotAToken> {
    let what = if value.trim_start().starts_with("whsec_") {
        "a signing secret"
    } else if value.contains("-----BEGIN") {
        "key material"
    } else {
        return Ok(());
    };
    Err(NotAToken {
        variable: variable.to_owned(),
        what,
    })
}

/// The token in the variable `name` ([`get`]), unless [`check_token`] refuses its value.
pub fn token(name: &str) -> Result<Option<SecretString>, NotAToken> {
    let Some(value) = get(name) else {
        return Ok(None);
    };
    check_token(name, value.expose_secret())?;
    Ok(Some(value))
}

/// Makes the process non-dumpable (Linux): its `/proc/<pid>` files then belong to root, so
/// processes of the same user (a command sink's, say) cannot read its environment or memory,
/// nor attach a debugger to it. Elsewhere it does nothing.
pub fn protect_process() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE) takes plain integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Overwrites with zeros, in place, the value of every `name=` entry of the environment block.
///
/// # Safety
/// No other thread may read or write the environment meanwhile.
#[cfg(target_os = "linux")]
unsafe fn wipe(name: &str) {
    unsafe extern "C" {
        static mut environ: *mut *mut libc::c_char;
    }
    let prefix = format!("{name}=");
    // SAFETY: `environ` is the NUL-terminated array of NUL-terminated `NAME=value` strings
    // the C library keeps; nothing else changes it meanwhile (the caller's guarantee). The
    // strings are writable (the initial stack, or the C library's heap for later setenv),
    // and only bytes before each string's terminating NUL are written.
    unsafe {
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let text = (*entry).cast::<u8>();
            let length = libc::strlen(*entry);
            let bytes = std::slice::from_raw_parts_mut(text, length);
            if bytes.starts_with(prefix.as_bytes()) {
                bytes[prefix.len()..].fill(0);
            }
            entry = entry.add(1);
        }
    }
}

/// Elsewhere the environment block is left as it is; the variable is still removed.
#[cfg(not(target_os = "linux"))]
unsafe fn wipe(_name: &str) {}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_is_made_non_dumpable() {
        super::protect_process();
        // SAFETY: prctl(PR_GET_DUMPABLE) only reads a flag of the process.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        assert_eq!(dumpable, 0);
    }

    #[test]
    fn a_signing_secret_or_key_material_is_not_a_token() {
        for value in [
            "whsec_abc123",
            "  whsec_abc123\n",
            "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----",
        ] {
            let err = super::check_token("KAYLE_X", value)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("KAYLE_X holds "), "{err}");
            assert!(!err.contains("abc123") && !err.contains("MIIE"), "{err}");
        }
        for value in ["kk_live_abc", "hvs.CAESIabc", "s.abcdef", "token-whsec_x"] {
            assert!(super::check_token("KAYLE_X", value).is_ok(), "{value}");
        }
    }

    #[test]
    fn a_variable_not_taken_is_read_from_the_environment() {
        use secrecy::ExposeSecret;
        let home = std::env::var("HOME").expect("HOME is set");
        let got = super::get("HOME").expect("read from the environment");
        assert_eq!(got.expose_secret(), home);
        assert!(super::get("KAYLE_SYNC_TEST_NEVER_SET").is_none());
    }
}
