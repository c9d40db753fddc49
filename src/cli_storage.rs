//! `storage user totp|webauthn`, `storage bans` and `storage encryption check|change-key`: Authelia's
//! subcommand names over Portcullis' storage layer, for the scripts operators already have.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Configuration;
use crate::storage::{AuthAttempt, AuthType, Storage};

/// `storage user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// One-time password (TOTP) configurations.
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Security keys and passkeys.
    #[command(subcommand)]
    Webauthn(WebauthnCommand),
}

/// `storage user totp ...`.
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Delete a user's TOTP configuration (they must register again).
    Delete {
        /// The user.
        username: String,
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
}

/// Runs `action` against the configured database.
pub fn run(config: &Configuration, action: Action) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        Action::Bans(command) => bans(config, storage, command).await?,
    }
    Ok(())
}

async fn bans(config: &Configuration, storage: Storage, command: BansCommand) -> Result<(), String> {
    let (user_kind, action) = match command {
        BansCommand::User(action) => (true, action),
        BansCommand::Ip(action) => (false, action),
    };
    let now = crate::clock::now();
    match action {
        BanAction::List => {
            let regulation = &config.regulation;
            let window = regulation.find_time.get().saturating_add(regulation.ban_time.get());
            let since = now.saturating_sub(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
            let (users, ips) = storage.failed_subjects(since, 1000).await.map_err(|e| e.to_string())?;
            let regulator = crate::regulation::Regulator::new(regulation, storage);
            println!("{:<40}  banned until", if user_kind { "user" } else { "address" });
            for subject in if user_kind { users } else { ips } {
                let (user, ip) = if user_kind { (subject.as_str(), "") } else { ("", subject.as_str()) };
                if let Some(until) = regulator.banned_until(user, ip, now).await.map_err(|e| e.to_string())? {
                    println!("{subject:<40}  {}", when(until));
                }
            }
        }
        BanAction::Revoke { target } => {
            let (username, remote_ip) = if user_kind {
                (target.clone(), String::new())
            } else {
                let ip: std::net::IpAddr = target.parse().map_err(|_| format!("'{target}' is not an IP address"))?;
                (String::new(), ip.to_string())
            };
            let marker = AuthAttempt {
                time: now,
                successful: true,
                banned: false,
                username,
                auth_type: AuthType::Unban,
                remote_ip,
                request_uri: String::new(),
                request_method: String::new(),
            };
            storage.log_attempt(marker).await.map_err(|e| e.to_string())?;
            println!("Lifted the ban on '{target}' (if there was one).");
        }
    }
    Ok(())
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
