//! `storage import-authelia`: carries an Authelia database's users' second factors and
//! standing over to ours, so that switching servers asks nobody to enrol again. Read from
//! Authelia (never written): TOTP configurations (secrets opened with Authelia's
//! encryption key, sealed again with ours), WebAuthn credentials (public keys opened and
//! turned into the WebAuthn library's form), preferred second factors, bans in force, and
//! OpenID Connect subjects (so relying parties keep knowing each user by the same `sub`).
//!
//! What is there already is kept: a user with a TOTP setup, a credential registered
//! twice, a subject assigned, a ban set: each is reported and skipped, so running the
//! import again changes nothing. Authelia's sessions, tokens, consents, one-time codes and
//! authentication history are not carried over: they are short-lived or history, and a
//! user simply signs in or consents again.

use base64::Engine as _;

use crate::second_factor::portable::{PortableCredential, passkey_of};
use crate::second_factor::totp::TotpService;
use crate::storage::authelia::{AutheliaDatabase, AutheliaTotp, AutheliaWebAuthn};
use crate::storage::{BanTarget, Cipher, Storage, StorageError, TotpRecord, WebAuthnCredential};

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Carried over.
    Imported,
    /// Already there; left as it was.
    Exists,
    /// Not carried over, with why.
    Skipped(String),
}

/// One line of the report: the kind of item, whose, which, and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// `totp`, `webauthn`, `preference`, `ban`, `subject`.
    pub kind: &'static str,
    /// The user or address.
    pub subject: String,
    /// Which item, when a user has several (a credential's description, a sector).
    pub detail: String,
    /// What happened.
    pub outcome: Outcome,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Report {
    /// Authelia's schema version.
    pub schema: i64,
    /// Every item, in the order read.
    pub lines: Vec<Line>,
}

impl Report {
    /// How many items of `kind` ended as `outcome`.
    pub fn count(&self, kind: &str, outcome: &Outcome) -> usize {
        self.lines.iter().filter(|l| l.kind == kind && &l.outcome == outcome).count()
    }

    fn add(&mut self, kind: &'static str, subject: &str, detail: &str, outcome: Outcome) {
        self.lines.push(Line { kind, subject: subject.to_string(), detail: detail.to_string(), outcome });
    }
}

/// Why an import could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Either database failed.
    #[error("{0}")]
    Storage(#[from] StorageError),
    /// Authelia's values cannot be opened with the key given.
    #[error(
        "the Authelia encryption key does not open its database (check storage.encryption_key of the Authelia configuration)"
    )]
    WrongKey,
}

/// Imports everything from `source` (opened with Authelia's `authelia_key`) into `ours`;
/// with `dry_run`, reads and opens everything and reports, writing nothing.
pub async fn import(
    source: &mut AutheliaDatabase,
    authelia_key: &str,
    ours: &Storage,
    dry_run: bool,
    now: i64,
) -> Result<Report, ImportError> {
    let theirs = Cipher::from_key(authelia_key);
    if let Some(check) = source.key_check().await?
        && theirs.decrypt(&check).is_err()
    {
        return Err(ImportError::WrongKey);
    }
    let mut report = Report { schema: source.schema, ..Report::default() };

    for row in source.totp().await? {
        let outcome = match totp_record(&theirs, &row, now) {
            Err(why) => Outcome::Skipped(why),
            Ok(_) if ours.totp_exists(&row.username).await? => Outcome::Exists,
            Ok(record) => {
                if !dry_run {
                    ours.totp_save(record).await?;
                }
                Outcome::Imported
            }
        };
        report.add("totp", &row.username, "", outcome);
    }

    for row in source.webauthn().await? {
        let outcome = match credential(&theirs, &row, now) {
            Err(why) => Outcome::Skipped(why),
            Ok(c) if dry_run => {
                let owned = ours.webauthn_owner(&c.rp_id, &c.kid).await?.is_some();
                if owned { Outcome::Exists } else { Outcome::Imported }
            }
            Ok(c) => match ours.webauthn_insert(c).await {
                Ok(()) => Outcome::Imported,
                Err(StorageError::Duplicate) => Outcome::Exists,
                Err(e) => return Err(e.into()),
            },
        };
        report.add("webauthn", &row.username, &row.description, outcome);
    }

    for row in source.preferences().await? {
        let method = row.second_factor_method.as_str();
        let outcome = if !matches!(method, "totp" | "webauthn") {
            Outcome::Skipped(format!("'{method}' is not a second factor here (Duo push is not supported)"))
        } else if ours.preferred_method(&row.username).await?.is_some() {
            Outcome::Exists
        } else {
            if !dry_run {
                ours.set_preferred_method(&row.username, method).await?;
            }
            Outcome::Imported
        };
        report.add("preference", &row.username, method, outcome);
    }

    let in_force = ours.bans_in_force(now).await?;
    for (target, ip) in [(BanTarget::User, false), (BanTarget::Ip, true)] {
        for row in source.bans(ip, now).await? {
            let subject = match target {
                BanTarget::Ip => match row.subject.parse::<std::net::IpAddr>() {
                    Ok(ip) => ip.to_string(),
                    Err(_) => {
                        report.add("ban", &row.subject, "", Outcome::Skipped("not an IP address".into()));
                        continue;
                    }
                },
                BanTarget::User => row.subject.clone(),
            };
            let same = |b: &&crate::storage::ExplicitBan| {
                b.target == target && b.subject == subject && b.expires_at == row.expires && b.source == "authelia"
            };
            let outcome = if in_force.iter().any(|b| same(&b)) {
                Outcome::Exists
            } else {
                if !dry_run {
                    ours.ban_add(target, &subject, row.expires, "authelia", row.reason.as_deref(), now).await?;
                }
                Outcome::Imported
            };
            report.add("ban", &subject, if ip { "address" } else { "user" }, outcome);
        }
    }

    for row in source.subjects().await? {
        let valid = uuid::Uuid::parse_str(&row.identifier).is_ok();
        let outcome = if !valid {
            Outcome::Skipped("the identifier is not a UUID".into())
        } else if dry_run || ours.oidc_subject_import(&row.sector_id, &row.username, &row.identifier).await? {
            Outcome::Imported
        } else {
            Outcome::Exists
        };
        let sector = if row.sector_id.is_empty() { "(provider-wide)" } else { row.sector_id.as_str() };
        report.add("subject", &row.username, sector, outcome);
    }
    Ok(report)
}

/// Authelia's TOTP row as ours: its secret is the base32 text, sealed.
fn totp_record(theirs: &Cipher, row: &AutheliaTotp, now: i64) -> Result<TotpRecord, String> {
    let base32 = theirs.decrypt(&row.secret).map_err(|_| "the secret does not open with the key".to_string())?;
    let text = String::from_utf8(base32).map_err(|_| "the secret is not base32 text".to_string())?;
    let secret = totp_rs::Secret::try_from_base32(text.trim().trim_end_matches('=').to_ascii_uppercase())
        .map_err(|_| "the secret is not base32".to_string())?
        .as_ref()
        .to_vec();
    let record = TotpRecord {
        username: row.username.clone(),
        created_at: row.created_at.unwrap_or(now),
        last_used_at: row.last_used_at,
        issuer: row.issuer.clone().unwrap_or_default(),
        algorithm: row.algorithm.to_ascii_uppercase(),
        digits: u32::try_from(row.digits).map_err(|_| "bad digits".to_string())?,
        period: u32::try_from(row.period).map_err(|_| "bad period".to_string())?,
        secret,
    };
    // The parameters must make codes (6 or 8 digits, a known algorithm, a long enough secret).
    TotpService::code_at(&record, now).ok_or_else(|| {
        format!("unusable parameters ({} digits, {}, {} s)", record.digits, record.algorithm, record.period)
    })?;
    Ok(record)
}

/// Authelia's WebAuthn row as ours, its public key opened.
fn credential(theirs: &Cipher, row: &AutheliaWebAuthn, now: i64) -> Result<WebAuthnCredential, String> {
    let public_key =
        theirs.decrypt(&row.public_key).map_err(|_| "the public key does not open with the key".to_string())?;
    credential_from(row, public_key, now)
}

/// Authelia's WebAuthn credential (a database row or an entry of its YAML export) as
/// ours, given its COSE `public_key` in the clear: the credential put in the WebAuthn
/// library's form, the credential ID in base64url.
pub fn credential_from(row: &AutheliaWebAuthn, public_key: Vec<u8>, now: i64) -> Result<WebAuthnCredential, String> {
    if row.legacy {
        // Registered through U2F before Authelia 4.34: it signs for the FIDO AppID, which
        // only the appid extension asks for, and the WebAuthn library does not offer it.
        return Err(
            "a U2F registration (before Authelia 4.34) needs the appid extension: register the key again".into()
        );
    }
    let id = base64::engine::general_purpose::STANDARD
        .decode(row.kid.trim())
        .map_err(|_| "the credential ID is not base64".to_string())?;
    let format = row.attestation_format.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "none".into());
    let portable = PortableCredential {
        id: id.clone(),
        public_key,
        sign_count: u32::try_from(row.sign_count).unwrap_or(0),
        transports: row.transport.as_deref().unwrap_or_default().split(',').map(str::to_string).collect(),
        user_verified: row.verified,
        backup_eligible: row.backup_eligible,
        backup_state: row.backup_state,
        attestation_format: format.clone(),
    };
    let passkey = passkey_of(&portable)?;
    Ok(WebAuthnCredential {
        id: 0,
        username: row.username.clone(),
        description: row.description.clone(),
        kid: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&id),
        rp_id: row.rpid.clone(),
        discoverable: row.discoverable,
        aaguid: row.aaguid.clone().unwrap_or_default(),
        attestation_type: format,
        sign_count: row.sign_count,
        clone_warning: row.clone_warning,
        created_at: row.created_at.unwrap_or(now),
        last_used_at: row.last_used_at,
        credential: serde_json::to_vec(&passkey).map_err(|e| e.to_string())?,
    })
}
