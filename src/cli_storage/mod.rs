//! `storage user totp|webauthn`, `storage bans` and `storage encryption check|change-key`: Authelia's
//! subcommand names over Portcullis' storage layer, for the scripts operators already have.

mod exports;

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Configuration;
use crate::storage::{BanTarget, PERMANENT_BAN_UNTIL, Storage};

/// `storage user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// One-time password (TOTP) configurations.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Security keys and passkeys.
    #[command(subcommand)]
    Webauthn(WebauthnCommand),
    /// OpenID Connect subjects (the opaque `sub` each relying party knows a user by).
    #[command(subcommand)]
    Identifiers(exports::IdentifiersCommand),
}

/// `storage user totp ...`.
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Create a TOTP setup for a user and print its otpauth:// URI.
    Generate {
        /// The user.
        username: String,
        /// The shared secret, base32 without padding (to restore a setup); random otherwise.
        #[arg(long)]
        secret: Option<String>,
        /// Bytes of a random secret.
        #[arg(long, default_value_t = 32)]
        secret_size: usize,
        /// Seconds per code.
        #[arg(long, default_value_t = 30)]
        period: u32,
        /// Digits per code (6 or 8).
        #[arg(long, default_value_t = 6)]
        digits: u32,
        /// SHA1, SHA256 or SHA512.
        #[arg(long, default_value = "SHA1")]
        algorithm: String,
        /// The issuer shown by authenticator apps (default: totp.issuer).
        #[arg(long)]
        issuer: Option<String>,
        /// Replace an existing setup.
        #[arg(long)]
        force: bool,
    },
    /// Export every TOTP setup: Authelia's YAML file, or with `uri`/`csv` another form.
    Export {
        /// Another form than YAML.
        #[command(subcommand)]
        format: Option<TotpExport>,
        /// The YAML file to write (created with mode 0600).
        #[arg(long, default_value = "authelia.export.totp.yml")]
        file: std::path::PathBuf,
    },
    /// Import TOTP setups from a YAML export (Authelia's format); users that already have
    /// one are left as they are and reported.
    Import {
        /// The YAML export.
        filename: std::path::PathBuf,
    },
    /// Delete a user's TOTP configuration (they must register again).
    Delete {
        /// The user.
        username: String,
    },
}

/// `storage user totp export ...`.
#[derive(Debug, Subcommand)]
pub enum TotpExport {
    /// One otpauth:// URI per line on standard output.
    Uri,
    /// A CSV file: issuer,username,algorithm,digits,period,secret.
    Csv {
        /// The file to write (created with mode 0600).
        #[arg(long, default_value = "authelia.export.totp.csv")]
        file: std::path::PathBuf,
    },
    /// One QR code PNG per user (`<username>.png`), to scan into an authenticator app.
    Png {
        /// The directory to write them to (created private).
        #[arg(long, default_value = ".")]
        directory: std::path::PathBuf,
    },
}

/// `storage user webauthn ...`.
#[derive(Debug, Subcommand)]
pub enum WebauthnCommand {
    /// List a user's security keys and passkeys.
    List {
        /// The user.
        username: String,
    },
    /// Delete a user's security keys and passkeys: all of them, or the one with a description.
    Delete {
        /// The user.
        username: String,
        /// Delete every credential of the user.
        #[arg(long, conflicts_with = "description")]
        all: bool,
        /// Delete the credential with this description.
        #[arg(long, required_unless_present = "all")]
        description: Option<String>,
    },
    /// Write every credential to Authelia's YAML export (public keys only; mode 0600).
    Export {
        /// The file to write.
        #[arg(long, default_value = "authelia.export.webauthn.yml")]
        file: std::path::PathBuf,
    },
    /// Add the credentials of a YAML export (Authelia's format); ones registered already
    /// are left as they are and reported.
    Import {
        /// The YAML export.
        filename: std::path::PathBuf,
    },
    /// Check that every stored credential can be read and used, and name cloned ones.
    Verify {
        /// Also list the credentials without a problem.
        #[arg(long)]
        verbose: bool,
    },
}

/// `storage bans ...`.
#[derive(Debug, Subcommand)]
pub enum BansCommand {
    /// Bans of users.
    #[command(subcommand)]
    User(BanAction),
    /// Bans of client addresses.
    #[command(subcommand)]
    Ip(BanAction),
}

/// What to do with bans of one kind.
#[derive(Debug, Subcommand)]
pub enum BanAction {
    /// The bans in force now (from regulation's failed attempts).
    List,
    /// Lift the ban (and forget the failures that led to it).
    Revoke {
        /// The username or IP address.
        target: String,
    },
    /// Ban a user or an address by hand, whatever its attempts (and even with regulation off).
    Add {
        /// The username or IP address.
        target: String,
        /// How long, in Authelia's duration forms ("1 day", "2h", "30m").
        #[arg(short, long, default_value = "1 day", conflicts_with = "permanent")]
        duration: String,
        /// Until lifted with `revoke`.
        #[arg(short, long)]
        permanent: bool,
        /// Why (shown by `list` and the admin API).
        #[arg(short, long)]
        reason: Option<String>,
    },
}

/// `storage encryption ...`.
#[derive(Debug, Subcommand)]
pub enum EncryptionCommand {
    /// Check that storage.encryption_key is the key the database was encrypted with.
    Check {
        /// Also decrypt every stored TOTP secret and WebAuthn credential (not implemented
        /// separately: the key check covers them, as they share the key).
        #[arg(long)]
        verbose: bool,
    },
    /// Re-encrypt every sealed value under a new key, in one transaction; then set
    /// storage.encryption_key to it.
    ChangeKey {
        /// The new key (at least 20 characters).
        #[arg(long = "new-encryption-key", value_name = "KEY")]
        new_encryption_key: String,
        /// Remove unused recovery codes, whose hashes depend on the key (refused otherwise
        /// while any exist).
        #[arg(long)]
        discard_recovery_codes: bool,
    },
}

/// Which storage command ran.
pub enum Action {
    /// `storage user ...`.
    User(UserCommand),
    /// `storage bans ...`.
    Bans(BansCommand),
    /// `storage encryption ...`.
    Encryption(EncryptionCommand),
    /// `storage import-authelia --from FILE`.
    ImportAuthelia {
        /// The Authelia configuration.
        from: std::path::PathBuf,
        /// The configuration file filters, applied to it too.
        filters: Vec<String>,
        /// Change nothing.
        dry_run: bool,
    },
}

/// Runs `action` against the configured database.
pub fn run(config: &Configuration, action: Action) -> ExitCode {
    let Some(runtime) = crate::cli::command_runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(execute(config, action)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(config: &Configuration, action: Action) -> Result<(), String> {
    let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
    // Opening applies pending migrations and checks the encryption key.
    let storage = Storage::open(&config.storage, certificates).await.map_err(|e| e.to_string())?;
    match action {
        Action::Encryption(EncryptionCommand::Check { .. }) => {
            println!("Storage encryption key check: SUCCESS (storage.encryption_key matches this database)");
        }
        Action::Encryption(EncryptionCommand::ChangeKey { new_encryption_key, discard_recovery_codes }) => {
            if new_encryption_key.chars().count() < 20 {
                return Err("--new-encryption-key: at least 20 characters".into());
            }
            if new_encryption_key == config.storage.encryption_key.expose() {
                return Err("--new-encryption-key: the same as storage.encryption_key".into());
            }
            let report = storage
                .change_encryption_key(&new_encryption_key, discard_recovery_codes)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "Re-encrypted {} TOTP secret(s), {} WebAuthn credential(s) and {} sealed value(s); removed {} recovery \
                 code(s) and {} pending emailed code(s). Set storage.encryption_key to the new key before starting \
                 the server.",
                report.totp,
                report.webauthn,
                report.sealed,
                report.recovery_codes_removed,
                report.one_time_codes_removed
            );
            // Their keyed hashes depend on the key: they cannot be carried over.
            println!(
                "Personal API tokens and unused referral tokens are stored as hashes keyed by the old key: they no \
                 longer work; users create new ones."
            );
        }
        Action::User(UserCommand::Totp(TotpCommand::Generate {
            username,
            secret,
            secret_size,
            period,
            digits,
            algorithm,
            issuer,
            force,
        })) => {
            if !force && storage.totp_exists(&username).await.map_err(|e| e.to_string())? {
                return Err(format!("user '{username}' already has a TOTP setup; use --force to replace it"));
            }
            let secret = match secret {
                Some(text) => totp_rs::Secret::try_from_base32(text.to_ascii_uppercase())
                    .map_err(|e| format!("--secret: not base32: {e}"))?
                    .as_ref()
                    .to_vec(),
                None => {
                    use rand::RngCore as _;
                    let mut bytes = vec![0u8; secret_size.max(20)];
                    rand::rng().fill_bytes(&mut bytes);
                    bytes
                }
            };
            let record = crate::storage::TotpRecord {
                username: username.clone(),
                created_at: crate::clock::now(),
                last_used_at: None,
                issuer: issuer.unwrap_or_else(|| config.totp.issuer.clone()),
                algorithm: algorithm.to_ascii_uppercase(),
                digits,
                period,
                secret,
            };
            let uri = otpauth(&record)?;
            storage.totp_save(record).await.map_err(|e| e.to_string())?;
            println!("Saved the TOTP setup of user '{username}': {uri}");
        }
        Action::User(UserCommand::Totp(TotpCommand::Import { filename })) => {
            let text =
                std::fs::read_to_string(&filename).map_err(|e| format!("cannot read '{}': {e}", filename.display()))?;
            let export: TotpYaml = serde_yaml::from_str(&text)
                .map_err(|e| format!("'{}' is not a TOTP export: {e}", filename.display()))?;
            let (mut imported, mut skipped) = (0, 0);
            for (i, entry) in export.totp_configurations.into_iter().enumerate() {
                let at = |what: &str| format!("totp_configurations[{i}].{what}");
                if storage.totp_exists(&entry.username).await.map_err(|e| e.to_string())? {
                    println!("exists   {}", entry.username);
                    skipped += 1;
                    continue;
                }
                let secret = totp_rs::Secret::try_from_base32(entry.secret.to_ascii_uppercase())
                    .map_err(|e| format!("{}: not base32: {e}", at("secret")))?
                    .as_ref()
                    .to_vec();
                let time = |text: &str, what: &str| {
                    parse_rfc3339(text).ok_or_else(|| format!("{}: not an RFC 3339 time", at(what)))
                };
                let record = crate::storage::TotpRecord {
                    created_at: time(&entry.created_at, "created_at")?,
                    last_used_at: entry.last_used_at.as_deref().map(|t| time(t, "last_used_at")).transpose()?,
                    issuer: entry.issuer,
                    algorithm: entry.algorithm.to_ascii_uppercase(),
                    digits: entry.digits,
                    period: entry.period,
                    secret,
                    username: entry.username,
                };
                otpauth(&record).map_err(|e| format!("totp_configurations[{i}]: {e}"))?;
                println!("imported {}", record.username);
                storage.totp_save(record).await.map_err(|e| e.to_string())?;
                imported += 1;
            }
            println!("Imported {imported} TOTP setup(s); {skipped} user(s) had one already and were left as they are.");
        }
        Action::User(UserCommand::Totp(TotpCommand::Export { format, file })) => {
            let mut records = Vec::new();
            for username in storage.totp_usernames().await.map_err(|e| e.to_string())? {
                if let Some(record) = storage.totp_get(&username).await.map_err(|e| e.to_string())? {
                    records.push(record);
                }
            }
            match format {
                None => {
                    let entries: Vec<TotpYamlEntry> = records
                        .iter()
                        .map(|r| TotpYamlEntry {
                            created_at: rfc3339(r.created_at),
                            last_used_at: r.last_used_at.map(rfc3339),
                            username: r.username.clone(),
                            issuer: r.issuer.clone(),
                            algorithm: r.algorithm.clone(),
                            digits: r.digits,
                            period: r.period,
                            secret: totp_rs::Secret::from(r.secret.clone()).to_base32(),
                        })
                        .collect();
                    let yaml = serde_yaml::to_string(&TotpYaml { totp_configurations: entries })
                        .map_err(|e| format!("cannot write the export: {e}"))?;
                    write_private(&file, &yaml)?;
                    println!("Exported {} TOTP setup(s) to {}.", records.len(), file.display());
                }
                Some(TotpExport::Uri) => {
                    for record in &records {
                        println!("{}", otpauth(record)?);
                    }
                }
                Some(TotpExport::Png { directory }) => {
                    crate::config::embedded::create_private_dir(&directory)?;
                    for record in &records {
                        let png = totp_of(record)?.to_qr_png().map_err(|e| format!("{}: {e}", record.username))?;
                        // Usernames come from the database: keep the file inside the directory.
                        let name: String = record
                            .username
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() || "-_.@".contains(c) { c } else { '_' })
                            .collect();
                        let path = directory.join(format!("{}.png", name.trim_start_matches('.')));
                        write_private_bytes(&path, &png)?;
                        println!("{} -> {}", record.username, path.display());
                    }
                    println!("Exported {} TOTP setup(s) as QR codes to {}.", records.len(), directory.display());
                }
                Some(TotpExport::Csv { file }) => {
                    let mut csv = String::from("issuer,username,algorithm,digits,period,secret\n");
                    for r in &records {
                        let secret = totp_rs::Secret::from(r.secret.clone()).to_base32();
                        csv.push_str(&format!(
                            "{},{},{},{},{},{secret}\n",
                            r.issuer, r.username, r.algorithm, r.digits, r.period
                        ));
                    }
                    write_private(&file, &csv)?;
                    println!("Exported {} TOTP setup(s) to {}.", records.len(), file.display());
                }
            }
        }
        Action::User(UserCommand::Totp(TotpCommand::Delete { username })) => {
            if storage.totp_delete(&username).await.map_err(|e| e.to_string())? {
                println!("Deleted the TOTP configuration of user '{username}'.");
            } else {
                return Err(format!("user '{username}' has no TOTP configuration"));
            }
        }
        Action::User(UserCommand::Webauthn(WebauthnCommand::List { username })) => {
            let credentials = storage.webauthn_credentials(&username).await.map_err(|e| e.to_string())?;
            println!("{:<6}  {:<24}  {:<11}  {:<20}  last used", "id", "description", "passkey", "created");
            for c in credentials {
                println!(
                    "{:<6}  {:<24}  {:<11}  {:<20}  {}",
                    c.id,
                    c.description,
                    if c.discoverable { "yes" } else { "no" },
                    when(c.created_at),
                    c.last_used_at.map_or_else(|| "never".to_string(), when)
                );
            }
        }
        Action::User(UserCommand::Webauthn(WebauthnCommand::Delete { username, all, description })) => {
            let credentials = storage.webauthn_credentials(&username).await.map_err(|e| e.to_string())?;
            let chosen: Vec<_> =
                credentials.into_iter().filter(|c| all || description.as_deref() == Some(&c.description)).collect();
            if chosen.is_empty() {
                return Err(format!("user '{username}' has no matching security key or passkey"));
            }
            for c in chosen {
                storage.webauthn_delete(&username, c.id).await.map_err(|e| e.to_string())?;
                println!("Deleted credential {} ('{}') of user '{username}'.", c.id, c.description);
            }
        }
        Action::User(UserCommand::Webauthn(WebauthnCommand::Export { file })) => {
            exports::webauthn_export(&storage, file).await?;
        }
        Action::User(UserCommand::Webauthn(WebauthnCommand::Import { filename })) => {
            exports::webauthn_import(&storage, filename).await?;
        }
        Action::User(UserCommand::Webauthn(WebauthnCommand::Verify { verbose })) => {
            exports::webauthn_verify(&storage, verbose).await?;
        }
        Action::User(UserCommand::Identifiers(command)) => exports::identifiers(&storage, command).await?,
        Action::Bans(command) => bans(config, storage, command).await?,
        Action::ImportAuthelia { from, filters, dry_run } => import_authelia(&storage, from, filters, dry_run).await?,
    }
    Ok(())
}

async fn import_authelia(
    storage: &Storage,
    from: std::path::PathBuf,
    filters: Vec<String>,
    dry_run: bool,
) -> Result<(), String> {
    use crate::authelia_import::Outcome;
    let shown = from.display().to_string();
    let source = crate::config::load_storage_of_authelia(from, filters).map_err(|e| {
        let problems: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        format!("the Authelia configuration '{shown}': {}", problems.join("; "))
    })?;
    let certificates = source.config.certificates_directory.as_deref().map(std::path::Path::new);
    let mut database = crate::storage::authelia::AutheliaDatabase::open(&source.config.storage, certificates)
        .await
        .map_err(|e| format!("the Authelia database: {e}"))?;
    let key = source.config.storage.encryption_key.expose();
    let report = crate::authelia_import::import(&mut database, key, storage, dry_run, crate::clock::now())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "Authelia schema version {}{}",
        report.schema,
        if dry_run { " (dry run: nothing is changed)" } else { "" }
    );
    for line in &report.lines {
        let (word, why) = match &line.outcome {
            Outcome::Imported => (if dry_run { "would import" } else { "imported" }, String::new()),
            Outcome::Exists => ("exists", String::new()),
            Outcome::Skipped(why) => ("skipped", format!(": {why}")),
        };
        let detail = if line.detail.is_empty() { String::new() } else { format!(" ({})", line.detail) };
        println!("{word:<12}  {:<10}  {}{detail}{why}", line.kind, line.subject);
    }
    for kind in ["totp", "webauthn", "preference", "ban", "subject"] {
        let skipped =
            report.lines.iter().filter(|l| l.kind == kind && matches!(l.outcome, Outcome::Skipped(_))).count();
        println!(
            "{kind}: {} imported, {} already there, {skipped} skipped",
            report.count(kind, &Outcome::Imported),
            report.count(kind, &Outcome::Exists)
        );
    }
    Ok(())
}

async fn bans(config: &Configuration, storage: Storage, command: BansCommand) -> Result<(), String> {
    let (target, action) = match command {
        BansCommand::User(action) => (BanTarget::User, action),
        BansCommand::Ip(action) => (BanTarget::Ip, action),
    };
    let subject = |text: &str| -> Result<String, String> {
        match target {
            _ if text.trim().is_empty() => Err("the username or address is empty".into()),
            BanTarget::User => Ok(text.to_string()),
            BanTarget::Ip => text
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| format!("'{text}' is not an IP address")),
        }
    };
    let now = crate::clock::now();
    let regulator = crate::regulation::Regulator::new(&config.regulation, storage);
    match action {
        BanAction::List => {
            let bans = regulator.bans_in_force(now, 1000).await.map_err(|e| e.to_string())?;
            let heading = if target == BanTarget::User { "user" } else { "address" };
            println!("{heading:<40}  {:<20}  {:<10}  reason", "banned until", "source");
            for ban in bans.into_iter().filter(|b| b.target == target) {
                let until = if ban.until >= PERMANENT_BAN_UNTIL { "permanent".to_string() } else { when(ban.until) };
                println!("{:<40}  {until:<20}  {:<10}  {}", ban.subject, ban.source, ban.reason.unwrap_or_default());
            }
        }
        BanAction::Revoke { target: text } => {
            let subject = subject(&text)?;
            regulator.lift(target, &subject, now).await.map_err(|e| e.to_string())?;
            println!("Lifted the ban on '{subject}' (if there was one).");
        }
        BanAction::Add { target: text, duration, permanent, reason } => {
            let subject = subject(&text)?;
            let expires_at = if permanent {
                None
            } else {
                let length: crate::config::types::Duration =
                    duration.parse().map_err(|e| format!("--duration: {e}"))?;
                let secs = i64::try_from(length.as_secs()).unwrap_or(i64::MAX);
                if secs == 0 {
                    return Err("--duration: a ban must last at least a second".into());
                }
                Some(now.saturating_add(secs).min(PERMANENT_BAN_UNTIL))
            };
            regulator
                .ban(target, &subject, expires_at, "cli", reason.as_deref(), now)
                .await
                .map_err(|e| e.to_string())?;
            match expires_at {
                Some(until) => println!("Banned '{subject}' until {}.", when(until)),
                None => println!("Banned '{subject}' until the ban is revoked."),
            }
        }
    }
    Ok(())
}

/// Authelia's TOTP export file.
#[derive(serde::Serialize, serde::Deserialize)]
struct TotpYaml {
    totp_configurations: Vec<TotpYamlEntry>,
}

/// One setup in Authelia's TOTP export file (times in RFC 3339, the secret in base32).
#[derive(serde::Serialize, serde::Deserialize)]
struct TotpYamlEntry {
    created_at: String,
    #[serde(default)]
    last_used_at: Option<String>,
    username: String,
    issuer: String,
    algorithm: String,
    digits: u32,
    period: u32,
    secret: String,
}

/// An RFC 3339 time as Unix seconds.
fn parse_rfc3339(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

fn rfc3339(secs: i64) -> String {
    when(secs)
}

/// The otpauth:// URI of a TOTP setup.
fn otpauth(record: &crate::storage::TotpRecord) -> Result<String, String> {
    totp_of(record)?.to_url().map_err(|e| format!("invalid TOTP setup: {e}"))
}

/// A TOTP setup as the TOTP library holds it (its URI and QR code come from there).
fn totp_of(record: &crate::storage::TotpRecord) -> Result<totp_rs::Totp, String> {
    let algorithm = match record.algorithm.as_str() {
        "SHA1" => totp_rs::Algorithm::SHA1,
        "SHA256" => totp_rs::Algorithm::SHA256,
        "SHA512" => totp_rs::Algorithm::SHA512,
        other => return Err(format!("unknown TOTP algorithm '{other}'; use SHA1, SHA256 or SHA512")),
    };
    let digits = u8::try_from(record.digits).map_err(|_| "digits: 6 or 8".to_string())?;
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(digits)
        .with_step_duration(u64::from(record.period))
        .with_secret(record.secret.clone())
        .with_issuer(Some(record.issuer.replace(':', " ")))
        .with_account_name(record.username.replace(':', " "))
        .build()
        .map_err(|e| format!("invalid TOTP setup: {e}"))
}

/// Writes `text` to a new file only the owner can read.
fn write_private(path: &std::path::Path, text: &str) -> Result<(), String> {
    write_private_bytes(path, text.as_bytes())
}

/// Writes `bytes` to a new file only the owner can read.
fn write_private_bytes(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    file.write_all(bytes).map_err(|e| format!("cannot write '{}': {e}", path.display()))
}

/// Unix seconds as an RFC 3339 UTC time.
fn when(secs: i64) -> String {
    match u64::try_from(secs) {
        Ok(s) => {
            humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)).to_string()
        }
        Err(_) => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        crate::cli::Cli::command().debug_assert();
    }
}
