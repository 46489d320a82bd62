//! Public key files: PEM (SPKI or PKCS#1) or JWK JSON, turned into the JWK the API takes.
//!
//! A private key is refused, and no message ever quotes a key file's contents.

use super::code::Code;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPublicKey};

use super::walk::{ReadError, read_limited};
use crate::model::RsaPublicJwk;

/// The smallest modulus the API accepts, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a key file cannot be used; messages never include the file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    /// The file is missing or cannot be read.
    #[error("cannot read the key file: {0}")]
    Unreadable(String),
    /// The file holds a private key, which must never be given to kayle-sync.
    #[error("the key file holds a private key")]
    Private,
    /// The file is neither PEM nor JWK JSON, or its contents do not parse.
    #[error("the key file is not a PEM (SPKI or PKCS#1) or JWK RSA public key")]
    Unrecognized,
    /// The key is not RSA.
    #[error("the key is not an RSA key")]
    NotRsa,
    /// The modulus is shorter than the API accepts.
    #[error("the RSA key has {0} bits; at least 2048 are required")]
    TooSmall(usize),
}

impl KeyFileError {
    /// A stable diagnostic code.
    pub fn code(&self) -> Code {
        match self {
            KeyFileError::Unreadable(_) => Code::KeyFileUnreadable,
            KeyFileError::Private => Code::PrivateKeyRefused,
            KeyFileError::Unrecognized => Code::KeyFileInvalid,
            KeyFileError::NotRsa => Code::KeyNotRsa,
            KeyFileError::TooSmall(_) => Code::KeyTooSmall,
        }
    }

    /// How to fix it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            KeyFileError::Private => Some(
                "give the public half only, e.g. `openssl rsa -in key.pem -pubout -out key.pub.pem`, and keep the private key where the receiver runs",
            ),
            KeyFileError::Unrecognized => Some(
                "expected `-----BEGIN PUBLIC KEY-----`, `-----BEGIN RSA PUBLIC KEY-----` or a JSON object with `kty: RSA`, `n` and `e`",
            ),
            KeyFileError::TooSmall(_) => Some(
                "generate a larger key, e.g. `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072`",
            ),
            _ => None,
        }
    }
}

/// Reads a public key file.
pub fn read_public_key(path: &Path) -> Result<RsaPublicJwk, KeyFileError> {
    let bytes = read_limited(path).map_err(|err| match err {
        ReadError::Io(err) if err.kind() == std::io::ErrorKind::NotFound => {
            KeyFileError::Unreadable("not found".into())
        }
        ReadError::Io(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            KeyFileError::Unreadable("permission denied".into())
        }
        ReadError::Io(err) if err.kind() == std::io::ErrorKind::IsADirectory => {
            KeyFileError::Unreadable("it is a directory".into())
        }
        ReadError::Io(_) => KeyFileError::Unreadable("I/O error".into()),
        err @ ReadError::NotRegular(_) => KeyFileError::Unreadable(err.to_string()),
        ReadError::TooLarge(_) => KeyFileError::Unrecognized,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::Unrecognized)?;
    parse_public_key(text)
}

/// Parses PEM (SPKI or PKCS#1) or JWK JSON text.
pub fn parse_public_key(text: &str) -> Result<RsaPublicJwk, KeyFileError> {
    let trimmed = text.trim_start();
    if text.contains("PRIVATE KEY-----") {
        return Err(KeyFileError::Private);
    }
    let key = if trimmed.starts_with('{') {
        from_jwk(trimmed)?
    } else if trimmed.contains("-----BEGIN PUBLIC KEY-----") {
        RsaPublicKey::from_public_key_pem(trimmed.trim()).map_err(|err| match err {
            rsa::pkcs8::spki::Error::OidUnknown { .. } => KeyFileError::NotRsa,
            _ => KeyFileError::Unrecognized,
        })?
    } else if trimmed.contains("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(trimmed.trim()).map_err(|_| KeyFileError::Unrecognized)?
    } else {
        return Err(KeyFileError::Unrecognized);
    };
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(KeyFileError::TooSmall(bits));
    }
    Ok(RsaPublicJwk {
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    })
}

fn from_jwk(text: &str) -> Result<RsaPublicKey, KeyFileError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|_| KeyFileError::Unrecognized)?;
    let object = value.as_object().ok_or(KeyFileError::Unrecognized)?;
    if ["d", "p", "q", "dp", "dq", "qi", "oth"]
        .iter()
        .any(|m| object.contains_key(*m))
    {
        return Err(KeyFileError::Private);
    }
    if object.get("kty").and_then(|v| v.as_str()) != Some("RSA") {
        return Err(KeyFileError::NotRsa);
    }
    let number = |name: &str| -> Result<BigUint, KeyFileError> {
        let encoded = object
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or(KeyFileError::Unrecognized)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| KeyFileError::Unrecognized)?;
        Ok(BigUint::from_bytes_be(&bytes))
    };
    let (n, e) = (number("n")?, number("e")?);
    if n.bits() < MIN_RSA_BITS {
        return Err(KeyFileError::TooSmall(n.bits()));
    }
    RsaPublicKey::new(n, e).map_err(|_| KeyFileError::Unrecognized)
}

/// How the signing secret's name begins when the manifest names none.
pub const SECRET_NAME_PREFIX: &str = "KAYLE_WEBHOOK_SECRET_";

/// How a generated private key's name begins when the manifest names none.
pub const PRIVATE_KEY_NAME_PREFIX: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_";

/// The signing secret's name when the manifest names none: `KAYLE_WEBHOOK_SECRET_<KEY>`.
pub fn default_secret_name(endpoint_key: &str) -> String {
    format!("{SECRET_NAME_PREFIX}{}", env_style(endpoint_key))
}

/// The private key name a generated key uses when the manifest names none:
/// `KAYLE_WEBHOOK_PRIVATE_KEY_<KEY>`, plus `_<KEY_ID>` when the endpoint generates several.
pub fn default_private_key_name(endpoint_key: &str, key_id: &str, several: bool) -> String {
    let mut name = format!("{PRIVATE_KEY_NAME_PREFIX}{}", env_style(endpoint_key));
    if several {
        name.push('_');
        name.push_str(&env_style(key_id));
    }
    name
}

pub use crate::model::env_style;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_are_refused_without_parsing() {
        let text = "-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n";
        let err = parse_public_key(text).unwrap_err();
        assert_eq!(err, KeyFileError::Private);
        assert!(!err.to_string().contains("MIIsecret"));
        assert_eq!(
            parse_public_key(r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"x"}"#),
            Err(KeyFileError::Private)
        );
    }

    #[test]
    fn small_and_foreign_keys_are_refused() {
        let n = URL_SAFE_NO_PAD.encode([0xffu8; 128]);
        let jwk = format!(r#"{{"kty":"RSA","n":"{n}","e":"AQAB"}}"#);
        assert_eq!(parse_public_key(&jwk), Err(KeyFileError::TooSmall(1024)));
        assert_eq!(
            parse_public_key(r#"{"kty":"EC"}"#),
            Err(KeyFileError::NotRsa)
        );
        assert_eq!(parse_public_key("hello"), Err(KeyFileError::Unrecognized));
    }

    #[test]
    fn default_names_follow_the_key() {
        assert_eq!(
            default_private_key_name("identity-prod", "k1", false),
            "KAYLE_WEBHOOK_PRIVATE_KEY_IDENTITY_PROD"
        );
        assert_eq!(
            default_private_key_name("web", "2026-11", true),
            "KAYLE_WEBHOOK_PRIVATE_KEY_WEB_2026_11"
        );
    }
}
