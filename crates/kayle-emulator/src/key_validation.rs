//! The server's rules for encryption-key bodies: the request schema, then the key material
//! (public RSA only, modulus of at least 2048 bits).

use serde_json::{Map, Value};

use crate::store::NewKey;
use crate::validation::object;
use crate::zod::{Issue, Seg, js_len, type_name};

const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];
const PRIVATE_KEY_OPS: [&str; 5] = ["decrypt", "unwrapKey", "sign", "deriveKey", "deriveBits"];

/// The hint the server gives for key material it refuses.
pub(crate) const KEY_HINT: &str =
    "Provide an RSA-OAEP-256 public JWK without private key material.";

fn check_string(
    obj: &Map<String, Value>,
    field: &'static str,
    parent: Option<&'static str>,
    (min, max): (usize, usize),
    required: bool,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let path: Vec<Seg> = parent
        .map(Seg::Key)
        .into_iter()
        .chain([Seg::Key(field)])
        .collect();
    match obj.get(field) {
        None if !required => None,
        Some(Value::String(v)) => {
            if js_len(v) < min {
                issues.push(Issue::too_small("string", min as i64, &path));
            } else if js_len(v) > max {
                issues.push(Issue::too_big("string", max as i64, &path));
            }
            Some(v.clone())
        }
        other => {
            issues.push(Issue::invalid_type("string", type_name(other), &path));
            None
        }
    }
}

fn check_enum(
    obj: &Map<String, Value>,
    field: &'static str,
    parent: Option<&'static str>,
    allowed: &str,
    issues: &mut Vec<Issue>,
) {
    let path: Vec<Seg> = parent
        .map(Seg::Key)
        .into_iter()
        .chain([Seg::Key(field)])
        .collect();
    if obj.get(field).and_then(Value::as_str) != Some(allowed) {
        issues.push(Issue::invalid_option(&[allowed], &path));
    }
}

fn check_jwk_shape(jwk: &Map<String, Value>, issues: &mut Vec<Issue>) {
    let parent = Some("jwk");
    check_enum(jwk, "kty", parent, "RSA", issues);
    check_string(jwk, "n", parent, (1, 8192), true, issues);
    check_string(jwk, "e", parent, (1, 64), true, issues);
    check_string(jwk, "alg", parent, (0, 64), false, issues);
    check_string(jwk, "use", parent, (0, 32), false, issues);
    if let Some(ops) = jwk.get("key_ops") {
        let path = [Seg::Key("jwk"), Seg::Key("key_ops")];
        match ops {
            Value::Array(items) => {
                if items.len() > 8 {
                    issues.push(Issue::too_big("array", 8, &path));
                }
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        issues.push(Issue::invalid_type(
                            "string",
                            type_name(Some(item)),
                            &[Seg::Key("jwk"), Seg::Key("key_ops"), Seg::Index(i)],
                        ));
                    }
                }
            }
            other => issues.push(Issue::invalid_type("array", type_name(Some(other)), &path)),
        }
    }
}

/// Validates the shape of a key create body (the ZodError part of the server's checks).
pub(crate) fn create_key(body: &Value) -> Result<NewKey, Vec<Issue>> {
    let obj = object(body)?;
    let mut issues = Vec::new();
    let key_id = check_string(obj, "key_id", None, (1, 128), true, &mut issues);
    match obj.get("jwk") {
        Some(Value::Object(jwk)) => check_jwk_shape(jwk, &mut issues),
        other => issues.push(Issue::invalid_type(
            "object",
            type_name(other),
            &[Seg::Key("jwk")],
        )),
    }
    check_enum(obj, "algorithm", None, "RSA-OAEP-256", &mut issues);
    check_enum(obj, "key_type", None, "RSA", &mut issues);
    match (key_id, obj.get("jwk")) {
        (Some(key_id), Some(jwk)) if issues.is_empty() => Ok(NewKey {
            key_id,
            algorithm: "RSA-OAEP-256".to_string(),
            key_type: "RSA".to_string(),
            jwk: jwk.clone(),
        }),
        _ => Err(issues),
    }
}

/// The handler's checks on key material: public RSA only, modulus of at least 2048 bits.
pub(crate) fn key_material_is_acceptable(jwk: &Value) -> bool {
    use base64::Engine;
    let Some(obj) = jwk.as_object() else {
        return false;
    };
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return false;
    }
    let private_op = obj
        .get("key_ops")
        .and_then(Value::as_array)
        .is_some_and(|ops| {
            ops.iter()
                .any(|op| op.as_str().is_some_and(|op| PRIVATE_KEY_OPS.contains(&op)))
        });
    if private_op {
        return false;
    }
    let decode = |field: &str| {
        obj.get(field).and_then(Value::as_str).and_then(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v)
                .ok()
        })
    };
    let (Some(n), Some(e)) = (decode("n"), decode("e")) else {
        return false;
    };
    modulus_bits(&n) >= 2048 && e.iter().any(|b| *b != 0)
}

/// Bit length of a big-endian unsigned integer.
fn modulus_bits(bytes: &[u8]) -> usize {
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - first - 1) * 8 + (8 - bytes[first].leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits_counts_from_the_top_set_bit() {
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0x01, 0]), 9);
        assert_eq!(modulus_bits(&[0, 0]), 0);
    }
}
