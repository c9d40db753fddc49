//! Authelia's export files for WebAuthn credentials and OpenID Connect subjects
//! (`storage user webauthn export|import|verify`, `storage user identifiers
//! export|import|generate|add`): the same YAML, so files move between the two servers
//! and the scripts that make them keep working.

use std::path::PathBuf;

use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::{parse_rfc3339, rfc3339, write_private};
use crate::authelia_import::credential_from;
use crate::second_factor::portable::portable_of;
use crate::storage::authelia::AutheliaWebAuthn;
use crate::storage::{Storage, StorageError};

/// `storage user identifiers ...`.
#[derive(Debug, Subcommand)]
pub enum IdentifiersCommand {
    /// Write every OpenID Connect subject to Authelia's YAML export (mode 0600).
    Export {
        /// The file to write.
        #[arg(long, default_value = "authelia.export.opaque-identifiers.yml")]
        file: PathBuf,
    },
    /// Add the subjects of a YAML export; users that have one in a sector keep it.
    Import {
        /// The YAML export.
        filename: PathBuf,
    },
    /// Give users a subject in each sector, where they have none yet.
    Generate {
        /// The users (comma-separated).
        #[arg(long, value_delimiter = ',', required = true)]
        users: Vec<String>,
        /// Only `openid` is a service here.
        #[arg(long, value_delimiter = ',', default_value = "openid")]
        services: Vec<String>,
        /// The sectors (comma-separated; empty is the provider-wide one).
        #[arg(long, value_delimiter = ',', default_value = "")]
        sectors: Vec<String>,
    },
    /// Give a user a chosen (or random) subject in a sector.
    Add {
        /// The user.
        username: String,
        /// A version 4 UUID; random when omitted.
        #[arg(long)]
        identifier: Option<String>,
        /// The sector (usually empty: provider-wide).
        #[arg(long, default_value = "")]
        sector: String,
        /// Only `openid` is a service here.
        #[arg(long, default_value = "openid")]
        service: String,
    },
}

/// Authelia's WebAuthn export file.
#[derive(Serialize, Deserialize)]
struct WebAuthnYaml {
    webauthn_credentials: Vec<WebAuthnYamlEntry>,
}

/// One credential in Authelia's export (times in RFC 3339, IDs and keys in base64).
#[derive(Serialize, Deserialize)]
struct WebAuthnYamlEntry {
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    rpid: String,
    username: String,
    description: String,
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aaguid: Option<String>,
    #[serde(default)]
    attestation_type: String,
    #[serde(default)]
    attestation_format: String,
    #[serde(default)]
    attachment: String,
    #[serde(default)]
    transports: Vec<String>,
    #[serde(default)]
    sign_count: u32,
    #[serde(default)]
    clone_warning: bool,
    #[serde(default)]
    legacy: bool,
    #[serde(default)]
    discoverable: bool,
    #[serde(default)]
    present: bool,
    #[serde(default)]
    verified: bool,
    #[serde(default)]
    backup_eligible: bool,
    #[serde(default)]
    backup_state: bool,
    public_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    attestation: String,
}

/// Authelia's identifiers export file.
#[derive(Serialize, Deserialize)]
struct IdentifiersYaml {
    identifiers: Vec<IdentifierEntry>,
}

#[derive(Serialize, Deserialize)]
struct IdentifierEntry {
    service: String,
    sector_id: String,
    username: String,
    identifier: String,
}

fn storage_error(e: StorageError) -> String {
    e.to_string()
}

/// `storage user webauthn export`.
pub async fn webauthn_export(storage: &Storage, file: PathBuf) -> Result<(), String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut entries = Vec::new();
    for username in storage.webauthn_usernames().await.map_err(storage_error)? {
        for c in storage.webauthn_credentials(&username).await.map_err(storage_error)? {
            let portable = portable_of(&c.credential);
            entries.push(WebAuthnYamlEntry {
                created_at: rfc3339(c.created_at),
                last_used_at: c.last_used_at.map(rfc3339),
                rpid: c.rp_id,
                username: c.username,
                description: c.description,
                kid: b64.encode(&portable.id),
                aaguid: Some(c.aaguid).filter(|a| !a.is_empty()),
                attestation_type: String::new(),
                attestation_format: c.attestation_type,
                attachment: String::new(),
                transports: portable.transports,
                sign_count: u32::try_from(c.sign_count).unwrap_or(portable.sign_count),
                clone_warning: c.clone_warning,
                legacy: false,
                discoverable: c.discoverable,
                present: true,
                verified: portable.user_verified,
                backup_eligible: portable.backup_eligible,
                backup_state: portable.backup_state,
                public_key: b64.encode(&portable.public_key),
                attestation: String::new(),
            });
        }
    }
    let count = entries.len();
    let yaml = serde_yaml::to_string(&WebAuthnYaml { webauthn_credentials: entries })
        .map_err(|e| format!("cannot write the export: {e}"))?;
    write_private(&file, &yaml)?;
    println!("Exported {count} WebAuthn credential(s) to {}.", file.display());
    Ok(())
}

/// `storage user webauthn import FILE`.
pub async fn webauthn_import(storage: &Storage, filename: PathBuf) -> Result<(), String> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(&filename).map_err(|e| format!("cannot read '{}': {e}", filename.display()))?;
    let export: WebAuthnYaml =
        serde_yaml::from_str(&text).map_err(|e| format!("'{}' is not a WebAuthn export: {e}", filename.display()))?;
    let now = crate::clock::now();
    let (mut imported, mut skipped) = (0, 0);
    for (i, entry) in export.webauthn_credentials.into_iter().enumerate() {
        let at = |what: &str| format!("webauthn_credentials[{i}].{what}");
        let time =
            |text: &str, what: &str| parse_rfc3339(text).ok_or_else(|| format!("{}: not an RFC 3339 time", at(what)));
        let public_key = base64::engine::general_purpose::STANDARD
            .decode(entry.public_key.trim())
            .map_err(|_| format!("{}: not base64", at("public_key")))?;
        let row = AutheliaWebAuthn {
            created_at: Some(time(&entry.created_at, "created_at")?),
            last_used_at: entry.last_used_at.as_deref().map(|t| time(t, "last_used_at")).transpose()?,
            username: entry.username,
            rpid: entry.rpid,
            description: entry.description,
            kid: entry.kid,
            aaguid: entry.aaguid,
            attestation_format: Some(entry.attestation_format).filter(|f| !f.is_empty()),
            transport: Some(entry.transports.join(",")),
            sign_count: i64::from(entry.sign_count),
            clone_warning: entry.clone_warning,
            legacy: entry.legacy,
            discoverable: entry.discoverable,
            verified: entry.verified,
            backup_eligible: entry.backup_eligible,
            backup_state: entry.backup_state,
            public_key: Vec::new(),
        };
        let credential =
            credential_from(&row, public_key, now).map_err(|e| format!("webauthn_credentials[{i}]: {e}"))?;
        match storage.webauthn_insert(credential).await {
            Ok(()) => {
                println!("imported {} ({})", row.username, row.description);
                imported += 1;
            }
            Err(StorageError::Duplicate) => {
                println!("exists   {} ({})", row.username, row.description);
                skipped += 1;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    println!("Imported {imported} WebAuthn credential(s); {skipped} were registered already and left as they are.");
    Ok(())
}

/// `storage user webauthn verify`: every stored credential can be opened and read as a
/// key assertions can be checked against; cloned keys are named.
pub async fn webauthn_verify(storage: &Storage, verbose: bool) -> Result<(), String> {
    let mut problems = 0;
    let mut total = 0;
    for username in storage.webauthn_usernames().await.map_err(storage_error)? {
        for c in storage.webauthn_credentials(&username).await.map_err(storage_error)? {
            total += 1;
            let readable = crate::flows::security_keys::passkey_of(&c).is_some();
            let problem = match (readable, c.clone_warning) {
                (false, _) => Some("cannot be read: register it again"),
                (true, true) => Some("its signature counter went backwards once: it may have been cloned"),
                (true, false) => None,
            };
            match problem {
                Some(why) => {
                    problems += 1;
                    println!("problem  {username} ({}): {why}", c.description);
                }
                None if verbose => println!("ok       {username} ({})", c.description),
                None => {}
            }
        }
    }
    println!("Verified {total} WebAuthn credential(s): {problems} with a problem.");
    if problems > 0 { Err(format!("{problems} credential(s) need attention")) } else { Ok(()) }
}

/// The runs of `storage user identifiers ...`.
pub async fn identifiers(storage: &Storage, command: IdentifiersCommand) -> Result<(), String> {
    let openid_only = |service: &str| {
        if service == "openid" { Ok(()) } else { Err(format!("unknown service '{service}': only openid has subjects")) }
    };
    match command {
        IdentifiersCommand::Export { file } => {
            let identifiers: Vec<IdentifierEntry> = storage
                .oidc_subjects()
                .await
                .map_err(storage_error)?
                .into_iter()
                .map(|(sector_id, username, identifier)| IdentifierEntry {
                    service: "openid".into(),
                    sector_id,
                    username,
                    identifier,
                })
                .collect();
            let count = identifiers.len();
            let yaml = serde_yaml::to_string(&IdentifiersYaml { identifiers })
                .map_err(|e| format!("cannot write the export: {e}"))?;
            write_private(&file, &yaml)?;
            println!("Exported {count} identifier(s) to {}.", file.display());
        }
        IdentifiersCommand::Import { filename } => {
            let text =
                std::fs::read_to_string(&filename).map_err(|e| format!("cannot read '{}': {e}", filename.display()))?;
            let export: IdentifiersYaml = serde_yaml::from_str(&text)
                .map_err(|e| format!("'{}' is not an identifiers export: {e}", filename.display()))?;
            let (mut imported, mut skipped) = (0, 0);
            for (i, entry) in export.identifiers.into_iter().enumerate() {
                openid_only(&entry.service).map_err(|e| format!("identifiers[{i}].service: {e}"))?;
                let id = uuid::Uuid::parse_str(&entry.identifier)
                    .map_err(|_| format!("identifiers[{i}].identifier: not a UUID"))?
                    .to_string();
                if storage.oidc_subject_import(&entry.sector_id, &entry.username, &id).await.map_err(storage_error)? {
                    println!("imported {} ({})", entry.username, sector_name(&entry.sector_id));
                    imported += 1;
                } else {
                    println!("exists   {} ({})", entry.username, sector_name(&entry.sector_id));
                    skipped += 1;
                }
            }
            println!("Imported {imported} identifier(s); {skipped} user(s) had one there already (or it was taken).");
        }
        IdentifiersCommand::Generate { users, services, sectors } => {
            for service in &services {
                openid_only(service).map_err(|e| format!("--services: {e}"))?;
            }
            for username in users.iter().filter(|u| !u.trim().is_empty()) {
                for sector in &sectors {
                    let id = storage.oidc_subject(sector, username).await.map_err(storage_error)?;
                    println!("{username} ({}): {id}", sector_name(sector));
                }
            }
        }
        IdentifiersCommand::Add { username, identifier, sector, service } => {
            openid_only(&service).map_err(|e| format!("--service: {e}"))?;
            let id = match identifier {
                Some(text) => uuid::Uuid::parse_str(&text)
                    .ok()
                    .filter(|u| u.get_version_num() == 4)
                    .ok_or_else(|| format!("--identifier: '{text}' is not a version 4 UUID"))?,
                None => uuid::Uuid::new_v4(),
            };
            if !storage.oidc_subject_import(&sector, &username, &id.to_string()).await.map_err(storage_error)? {
                return Err(format!(
                    "user '{username}' has a subject in {} already, or the identifier is taken",
                    sector_name(&sector)
                ));
            }
            println!("Added identifier {id} for user '{username}' ({}).", sector_name(&sector));
        }
    }
    Ok(())
}

fn sector_name(sector: &str) -> &str {
    if sector.is_empty() { "provider-wide" } else { sector }
}
