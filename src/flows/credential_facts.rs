//! What Authelia's API says of a stored WebAuthn credential beyond our columns: its
//! transports, flags and public key, read from the WebAuthn library's serialized form.
//! Authelia's frontend reads these fields for every credential it lists.

use webauthn_rs::prelude::{COSEKey, COSEKeyType};

use super::security_keys::passkey_of;
use crate::storage::WebAuthnCredential;

/// The facts of one credential.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CredentialFacts {
    /// How the browser may reach the authenticator (`usb`, `nfc`, `ble`, `internal`,
    /// `hybrid`), as it said at registration.
    pub transports: Vec<String>,
    /// The user was verified (PIN, biometrics) at registration.
    pub user_verified: bool,
    /// The key may be copied to other devices (a synced passkey).
    pub backup_eligible: bool,
    /// The key is copied (backed up or synced).
    pub backup_state: bool,
    /// The public key as a COSE_Key (RFC 9052), CBOR-encoded, as authenticators send it.
    pub public_key: Vec<u8>,
}

/// Reads the facts of `c`; a credential the library cannot read has none.
pub fn of(c: &WebAuthnCredential) -> CredentialFacts {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&c.credential) else {
        return CredentialFacts::default();
    };
    let cred = &value["cred"];
    let flag = |name: &str| cred[name].as_bool().unwrap_or(false);
    let transports = cred["transports"]
        .as_array()
        .map(|list| list.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let public_key = passkey_of(c).and_then(|p| cose_bytes(p.get_public_key())).unwrap_or_default();
    CredentialFacts {
        transports,
        user_verified: flag("user_verified"),
        backup_eligible: flag("backup_eligible"),
        backup_state: flag("backup_state"),
        public_key,
    }
}

/// `key` as a CBOR COSE_Key map: kty (1), alg (3), then the key type's parameters.
fn cose_bytes(key: &COSEKey) -> Option<Vec<u8>> {
    use serde_cbor_2::Value::{Bytes, Integer};
    let mut map = std::collections::BTreeMap::new();
    let alg = key.type_ as i32;
    let (kty, params): (i128, Vec<(i128, serde_cbor_2::Value)>) = match &key.key {
        COSEKeyType::EC_EC2(k) => {
            (2, vec![(-1, Integer(k.curve.clone() as i128)), (-2, Bytes(k.x.clone())), (-3, Bytes(k.y.clone()))])
        }
        COSEKeyType::EC_OKP(k) => (1, vec![(-1, Integer(k.curve.clone() as i128)), (-2, Bytes(k.x.clone()))]),
        COSEKeyType::RSA(k) => (3, vec![(-1, Bytes(k.n.clone())), (-2, Bytes(k.e.to_vec()))]),
    };
    map.insert(Integer(1), Integer(kty));
    map.insert(Integer(3), Integer(i128::from(alg)));
    for (label, value) in params {
        map.insert(Integer(label), value);
    }
    serde_cbor_2::to_vec(&serde_cbor_2::Value::Map(map)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ec2_key_round_trips_through_cbor_as_a_cose_key() {
        let key: COSEKey = serde_json::from_value(serde_json::json!({
            "type_": "ES256",
            "key": {"EC_EC2": {"curve": "SECP256R1", "x": "AQID", "y": "BAUG"}}
        }))
        .unwrap();
        let bytes = cose_bytes(&key).unwrap();
        let back: serde_cbor_2::Value = serde_cbor_2::from_slice(&bytes).unwrap();
        let serde_cbor_2::Value::Map(map) = back else { panic!("a map") };
        let get = |label: i128| map.get(&serde_cbor_2::Value::Integer(label)).cloned();
        assert_eq!(get(1), Some(serde_cbor_2::Value::Integer(2)), "kty EC2");
        assert_eq!(get(3), Some(serde_cbor_2::Value::Integer(-7)), "alg ES256");
        assert_eq!(get(-1), Some(serde_cbor_2::Value::Integer(1)), "crv P-256");
        assert_eq!(get(-2), Some(serde_cbor_2::Value::Bytes(vec![1, 2, 3])));
        assert_eq!(get(-3), Some(serde_cbor_2::Value::Bytes(vec![4, 5, 6])));
    }

    #[test]
    fn an_unreadable_credential_has_no_facts() {
        let c = WebAuthnCredential {
            id: 1,
            username: "john".into(),
            description: "key".into(),
            kid: "AQID".into(),
            rp_id: "example.com".into(),
            discoverable: false,
            aaguid: String::new(),
            attestation_type: "none".into(),
            sign_count: 0,
            clone_warning: false,
            created_at: 0,
            last_used_at: None,
            credential: b"not json".to_vec(),
        };
        assert_eq!(of(&c), CredentialFacts::default());
    }
}
