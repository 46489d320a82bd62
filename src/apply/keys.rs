//! Encryption keys that kayle-sync generates itself (`generate: true`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use secrecy::{ExposeSecret, SecretString};

use crate::model::RsaPublicJwk;

/// The size of generated keys, in bits.
pub const GENERATED_KEY_BITS: usize = 4096;

/// A freshly generated key pair: the public half as a JWK, the private half as PKCS#8 PEM.
pub struct GeneratedKey {
    pub public: RsaPublicJwk,
    pub private_pem: SecretString,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("public", &self.public)
            .field("private_pem", &"(sensitive)")
            .finish()
    }
}

/// Generates an RSA key pair of `bits` bits. CPU-bound: call it from a blocking task.
pub fn generate(bits: usize) -> Result<GeneratedKey, rsa::Error> {
    let mut rng = rsa::rand_core::OsRng;
    let private = RsaPrivateKey::new(&mut rng, bits)?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(rsa::Error::Pkcs8)?;
    Ok(GeneratedKey {
        public: public_jwk(&private.to_public_key()),
        private_pem: SecretString::from(pem.as_str().to_owned()),
    })
}

/// The public half of a PEM private key (PKCS#8 or PKCS#1); `None` for anything else. The
/// PEM is never echoed.
pub fn public_half(pem: &SecretString) -> Option<RsaPublicJwk> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    let pem = pem.expose_secret().trim();
    let private = RsaPrivateKey::from_pkcs8_pem(pem)
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
        .ok()?;
    Some(public_jwk(&private.to_public_key()))
}

/// The JWK members `n` and `e` of a public key.
pub fn public_jwk(key: &RsaPublicKey) -> RsaPublicJwk {
    RsaPublicJwk {
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_a_pkcs8_pair_whose_public_half_matches() {
        let key = generate(2048).unwrap();
        let pem = key.private_pem.expose_secret();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
        let private = <RsaPrivateKey as rsa::pkcs8::DecodePrivateKey>::from_pkcs8_pem(pem).unwrap();
        assert_eq!(public_jwk(&private.to_public_key()), key.public);
        assert_eq!(key.public.e, "AQAB");
        assert!(
            !format!("{key:?}").contains("PRIVATE"),
            "Debug hides the private key"
        );
        assert_eq!(public_half(&key.private_pem), Some(key.public.clone()));
        assert_eq!(public_half(&SecretString::from("whsec_not_a_key")), None);
    }
}
