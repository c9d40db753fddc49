//! WebAuthn credentials in the portable form other servers keep them: the credential ID,
//! the public key as a CBOR COSE_Key (RFC 9052, as authenticators send it), the signature
//! counter and the flags seen at registration. Authelia stores and exports credentials
//! this way; the WebAuthn library keeps its own serialized form. These two functions
//! convert between them, so Authelia's API can show our credentials and Authelia's
//! credentials (its database, its YAML export) can be used here.

use serde_json::json;
use webauthn_rs::prelude::{COSEKey, COSEKeyType, Passkey};

/// What a credential is, apart from the library's form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortableCredential {
    /// The credential ID as the authenticator made it.
    pub id: Vec<u8>,
    /// The public key, a CBOR COSE_Key.
    pub public_key: Vec<u8>,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// How the browser may reach the authenticator (`usb`, `nfc`, `ble`, `internal`,
    /// `hybrid`); unknown names are dropped.
    pub transports: Vec<String>,
    /// The user was verified at registration.
    pub user_verified: bool,
    /// The key may be synced to other devices.
    pub backup_eligible: bool,
    /// The key is synced or backed up.
    pub backup_state: bool,
    /// The attestation statement format (`packed`, `none`, `fido-u2f`...).
    pub attestation_format: String,
}

/// Transport names the WebAuthn library knows.
const TRANSPORTS: [&str; 5] = ["usb", "nfc", "ble", "internal", "hybrid"];

/// `key` as a CBOR COSE_Key map: kty (1), alg (3), then the key type's parameters.
pub fn cose_bytes(key: &COSEKey) -> Option<Vec<u8>> {
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

/// The credential the WebAuthn library can verify assertions with, built from its
/// portable form. Fails when the public key is not a COSE_Key the library supports.
pub fn passkey_of(c: &PortableCredential) -> Result<Passkey, String> {
    let value: serde_cbor_2::Value =
        serde_cbor_2::from_slice(&c.public_key).map_err(|e| format!("the public key is not CBOR: {e}"))?;
    let key = COSEKey::try_from(&value).map_err(|e| format!("the public key is not a usable COSE key: {e:?}"))?;
    let transports: Vec<String> = c
        .transports
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| TRANSPORTS.contains(&t.as_str()))
        .collect();
    let format = match serde_json::from_value::<webauthn_rs::prelude::AttestationFormat>(json!(c.attestation_format)) {
        Ok(_) => c.attestation_format.clone(),
        Err(_) => "none".to_string(),
    };
    use base64::Engine as _;
    let document = json!({
        "cred": {
            "cred_id": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&c.id),
            "cred": key,
            "counter": c.sign_count,
            "transports": if transports.is_empty() { serde_json::Value::Null } else { json!(transports) },
            "user_verified": c.user_verified,
            "backup_eligible": c.backup_eligible,
            "backup_state": c.backup_state,
            // What Authelia asks for by default; the library checks verification per
            // ceremony by its own policy anyway.
            "registration_policy": "preferred",
            "extensions": {},
            // The attestation was checked by the server the credential was registered
            // with; its chain is not carried over.
            "attestation": {"data": "None", "metadata": "None"},
            "attestation_format": format,
        }
    });
    serde_json::from_value(document).map_err(|e| format!("cannot build the credential: {e}"))
}

/// The portable form of a credential the library serialized as `json` (facts it cannot
/// read are left at their defaults).
pub fn portable_of(json: &[u8]) -> PortableCredential {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return PortableCredential::default();
    };
    let cred = &value["cred"];
    let flag = |name: &str| cred[name].as_bool().unwrap_or(false);
    let transports = cred["transports"]
        .as_array()
        .map(|list| list.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let passkey: Option<Passkey> = serde_json::from_slice(json).ok();
    PortableCredential {
        id: passkey.as_ref().map(|p| p.cred_id().to_vec()).unwrap_or_default(),
        public_key: passkey.as_ref().and_then(|p| cose_bytes(p.get_public_key())).unwrap_or_default(),
        sign_count: cred["counter"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        transports,
        user_verified: flag("user_verified"),
        backup_eligible: flag("backup_eligible"),
        backup_state: flag("backup_state"),
        attestation_format: cred["attestation_format"].as_str().unwrap_or("none").to_string(),
    }
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

    /// A real P-256 public key (the NIST example point), so the library accepts it.
    fn p256_cose() -> Vec<u8> {
        use base64::Engine as _;
        let hex = |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect();
        let x: Vec<u8> = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
        let y: Vec<u8> = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
        let key: COSEKey = serde_json::from_value(serde_json::json!({
            "type_": "ES256",
            "key": {"EC_EC2": {"curve": "SECP256R1",
                "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(x),
                "y": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(y)}}
        }))
        .unwrap();
        cose_bytes(&key).unwrap()
    }

    #[test]
    fn a_portable_credential_becomes_the_library_form_and_back() {
        let portable = PortableCredential {
            id: vec![9; 80],
            public_key: p256_cose(),
            sign_count: 42,
            transports: vec!["usb".into(), "NFC".into(), "smart-card".into()],
            user_verified: true,
            backup_eligible: true,
            backup_state: false,
            attestation_format: "packed".into(),
        };
        let passkey = passkey_of(&portable).unwrap();
        assert_eq!(AsRef::<[u8]>::as_ref(passkey.cred_id()), portable.id.as_slice());
        let json = serde_json::to_vec(&passkey).unwrap();
        let back = portable_of(&json);
        assert_eq!(back.transports, ["usb", "nfc"], "known transports, lowercased");
        assert_eq!(PortableCredential { transports: portable.transports.clone(), ..back }, portable);

        let unknown_format = PortableCredential { attestation_format: "made-up".into(), ..portable.clone() };
        assert_eq!(
            portable_of(&serde_json::to_vec(&passkey_of(&unknown_format).unwrap()).unwrap()).attestation_format,
            "none"
        );
        let bad = PortableCredential { public_key: vec![1, 2, 3], ..portable };
        assert!(passkey_of(&bad).is_err());
    }

    #[test]
    fn an_unreadable_credential_has_no_facts() {
        assert_eq!(portable_of(b"not json"), PortableCredential::default());
    }
}
