//! The command line: `serve` (the default), `validate-config` (also `config validate`),
//! `build-info`, `storage migrate|user|bans|encryption`, `users import`, `crypto hash generate|validate`,
//! `access-control check-policy`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, LoadOptions, Loaded};

/// Portcullis: authentication and authorization for reverse proxies.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// Configuration file(s) or directories (their *.yml and *.yaml files in name order),
    /// merged in order; also comma-separated. Without any, X_AUTHELIA_CONFIG is read; if
    /// that is unset too, the embedded default runs (SQLite and secrets under ./data,
    /// memory sessions).
    #[arg(
        short = 'c',
        short_alias = 'f',
        long = "config",
        value_name = "FILE",
        env = "PORTCULLIS_CONFIG",
        value_delimiter = ',',
        global = true
    )]
    files: Vec<PathBuf>,
    /// Filters applied to every configuration file before it is parsed, in order:
    /// `template` (Go-template functions such as env, secret, fileContent, nindent) and
    /// `expand-env` (${VAR}). Comma-separated.
    #[arg(
        long = "config.experimental.filters",
        value_name = "FILTERS",
        env = "X_AUTHELIA_CONFIG_FILTERS",
        value_delimiter = ',',
        global = true
    )]
    filters: Vec<String>,
    /// Treat unknown keys as errors instead of warnings.
    #[arg(long, global = true)]
    strict: bool,
    /// A dedicated authentication host (seed 004): it serves the portal at its root; other
    /// hosts show an account summary and send portal pages there. Overrides
    /// `server.auth_host`.
    #[arg(long = "auth-host", value_name = "HOST", env = "PORTCULLIS_AUTH_HOST", global = true)]
    auth_host: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Check the configuration and list every problem with its key path.
    ValidateConfig,
    /// Configuration commands (Authelia's names).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print the version and how this binary was built.
    BuildInfo,
    /// Manage the database.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Cryptographic helpers.
    #[command(subcommand)]
    Crypto(CryptoCommand),
    /// Inspect access-control rules.
    #[command(subcommand)]
    AccessControl(AccessControlCommand),
    /// Manage the users of the database users backend.
    #[command(subcommand)]
    Users(UsersCommand),
    /// First run: tokens for creating the first administrator.
    #[command(subcommand)]
    Bootstrap(BootstrapCommand),
}

#[derive(Debug, Subcommand)]
enum BootstrapCommand {
    /// Issue a one-time token for creating the first administrator (while no user exists),
    /// stored in the configured database so every replica accepts it. Prints the token,
    /// then its expiry.
    Token {
        /// How long the token is valid (e.g. 30m, 1h; at most 24h).
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check the configuration and list every problem with its key path (the same as
    /// `validate-config`).
    Validate,
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Copy the users of an Authelia users file into the database users backend
    /// (authentication_backend.database), keeping their password hashes as they are.
    /// Users that exist already are left as they are and reported.
    Import {
        /// The users file (Authelia's users_database.yml format).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AccessControlCommand {
    /// Show which rule decides a request, and how every rule matched it.
    CheckPolicy {
        /// Target URL, e.g. https://app.example.com/admin?x=1.
        #[arg(long)]
        url: String,
        /// HTTP method.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Logged-in user (anonymous when absent).
        #[arg(long)]
        username: Option<String>,
        /// The user's groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// Client IP address.
        #[arg(long)]
        ip: Option<std::net::IpAddr>,
        /// `json` prints one object: {"policy": ..., "rule": <1-based index or null>}.
        #[arg(long, value_parser = ["table", "json"], default_value = "table")]
        output: String,
        /// Accepted for Authelia compatibility: the table always shows how every rule
        /// matched.
        #[arg(short, long)]
        verbose: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CryptoCommand {
    /// Password hashes.
    #[command(subcommand)]
    Hash(HashCommand),
}

#[derive(Debug, Subcommand)]
enum HashCommand {
    /// Hash a password (read from stdin when --password is not given).
    Generate {
        /// argon2 (default), sha2crypt, pbkdf2, bcrypt or scrypt. With --config, the
        /// configured algorithm and parameters are used instead.
        #[arg(value_parser = ["argon2", "sha2crypt", "pbkdf2", "bcrypt", "scrypt"])]
        algorithm: Option<String>,
        /// The algorithm's variant: argon2id, argon2i or argon2d; sha512 or sha256
        /// (sha2crypt); sha1, sha224, sha256, sha384 or sha512 (pbkdf2); standard or
        /// sha256 (bcrypt, sha256 being passlib's bcrypt-sha256).
        #[arg(long)]
        variant: Option<String>,
        /// The password.
        #[arg(long)]
        password: Option<String>,
        /// Generate a random password, print it, and hash it.
        #[arg(long, conflicts_with = "password")]
        random: bool,
    },
    /// Check a password against a hash: exit 0 when it matches, 1 when not, 2 on a bad hash.
    Validate {
        /// The password (read from stdin when not given).
        #[arg(long)]
        password: Option<String>,
        /// The hash, after `--`.
        #[arg(last = true, required = true)]
        digest: String,
    },
}

#[derive(Debug, Subcommand)]
enum StorageCommand {
    /// Apply, revert or list schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Users' second factors (Authelia's `storage user`).
    #[command(subcommand)]
    User(crate::cli_storage::UserCommand),
    /// Regulation bans (Authelia's `storage bans`).
    #[command(subcommand)]
    Bans(crate::cli_storage::BansCommand),
    /// The encryption key (Authelia's `storage encryption`).
    #[command(subcommand)]
    Encryption(crate::cli_storage::EncryptionCommand),
    /// Carry an Authelia database's TOTP setups, security keys and passkeys, preferred
    /// second factors, bans and OpenID Connect subjects over to this one.
    ImportAuthelia {
        /// The Authelia configuration naming its database and encryption key (its
        /// `storage` section is read; `AUTHELIA_*` variables apply to it).
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Read and decrypt everything and report, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply every pending migration.
    Up,
    /// Revert the newest applied migration.
    Down,
    /// List applied and pending migrations.
    Status,
}

/// Parses the arguments and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::ValidateConfig | Command::Config(ConfigCommand::Validate) => validate_config(&cli.config),
        Command::BuildInfo => build_info(),
        Command::Storage(StorageCommand::Migrate(action)) => migrate(&cli.config, &action),
        Command::Storage(StorageCommand::User(c)) => storage_command(&cli.config, crate::cli_storage::Action::User(c)),
        Command::Storage(StorageCommand::Bans(c)) => storage_command(&cli.config, crate::cli_storage::Action::Bans(c)),
        Command::Storage(StorageCommand::ImportAuthelia { from, dry_run }) => storage_command(
            &cli.config,
            crate::cli_storage::Action::ImportAuthelia { from, filters: cli.config.filters.clone(), dry_run },
        ),
        Command::Storage(StorageCommand::Encryption(c)) => {
            storage_command(&cli.config, crate::cli_storage::Action::Encryption(c))
        }
        Command::Users(UsersCommand::Import { file }) => import_users(&cli.config, &file),
        Command::Bootstrap(BootstrapCommand::Token { ttl }) => bootstrap_token(&cli.config, &ttl),
        Command::Crypto(CryptoCommand::Hash(command)) => crypto_hash(&cli.config, command),
        Command::AccessControl(AccessControlCommand::CheckPolicy {
            url, method, username, groups, ip, output, ..
        }) => check_policy(&cli.config, &url, &method, username.as_deref(), &groups, ip, &output),
    }
}

fn options(args: &ConfigArgs, persist_embedded: bool) -> LoadOptions {
    let files = config_paths(args);
    LoadOptions {
        embedded_data_dir: (persist_embedded && files.is_empty()).then(|| PathBuf::from(config::embedded::DATA_DIR)),
        files,
        filters: args.filters.clone(),
        strict: args.strict,
        use_env: true,
        authelia_env_only: false,
    }
}

/// `--config` (or PORTCULLIS_CONFIG), else Authelia's X_AUTHELIA_CONFIG (comma-separated).
fn config_paths(args: &ConfigArgs) -> Vec<PathBuf> {
    if !args.files.is_empty() {
        return args.files.clone();
    }
    std::env::var("X_AUTHELIA_CONFIG")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect()
}

fn build_info() -> ExitCode {
    println!("Name: {}", env!("CARGO_PKG_NAME"));
    println!("Version: {}", env!("CARGO_PKG_VERSION"));
    println!("Build OS: {}", std::env::consts::OS);
    println!("Build Arch: {}", std::env::consts::ARCH);
    println!("Build Profile: {}", if cfg!(debug_assertions) { "debug" } else { "release" });
    println!("Build Compiler: rustc");
    ExitCode::SUCCESS
}

/// Loads the configuration, or prints every warning and problem to stderr and returns
/// `None` (for commands that only need a configuration to act on).
fn load_or_report(args: &ConfigArgs, persist_embedded: bool) -> Option<Loaded> {
    match config::load(&options(args, persist_embedded)) {
        Ok(loaded) => Some(loaded),
        Err(e) => {
            for w in &e.warnings {
                eprintln!("warning: {w}");
            }
            for p in &e.problems {
                eprintln!("error: {p}");
            }
            None
        }
    }
}

fn validate_config(args: &ConfigArgs) -> ExitCode {
    match config::load(&options(args, false)) {
        Ok(loaded) => {
            for source in &loaded.sources {
                println!("source: {source}");
            }
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            let what = if loaded.embedded { "embedded default configuration" } else { "configuration" };
            println!("OK: the {what} is valid.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            for w in &e.warnings {
                println!("warning: {w}");
            }
            for p in &e.problems {
                println!("error: {p}");
            }
            println!("The configuration has {} error(s).", e.problems.len());
            ExitCode::FAILURE
        }
    }
}

fn check_policy(
    args: &ConfigArgs,
    url: &str,
    method: &str,
    username: Option<&str>,
    groups: &[String],
    ip: Option<std::net::IpAddr>,
    output: &str,
) -> ExitCode {
    use crate::access_control::{AccessControl, Object, Subject};
    // Only the rules are checked, as in Authelia: a file holding only access_control will do.
    let loaded = match config::load_access_control(&options(args, false)) {
        Ok(loaded) => loaded,
        Err(e) => {
            for p in &e.problems {
                eprintln!("error: {p}");
            }
            return ExitCode::FAILURE;
        }
    };
    let target = match url::Url::parse(url) {
        Ok(u) if u.host_str().is_some() => u,
        _ => {
            eprintln!("error: --url must be an absolute URL such as https://app.example.com/path");
            return ExitCode::from(2);
        }
    };
    let engine = match AccessControl::compile(&loaded.config) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let subject = Subject { username: username.unwrap_or(""), groups, client_id: "", ip, token: None };
    let object = Object::new(&target, method);
    let decision = engine.evaluate(&subject, &object);
    if output == "json" {
        let rule = decision.rule.map_or(serde_json::Value::Null, |r| r.into());
        println!("{}", serde_json::json!({"policy": decision.policy.as_str(), "rule": rule}));
        return ExitCode::SUCCESS;
    }
    let who = match username {
        Some(u) => format!("user '{u}' groups [{}]", groups.join(", ")),
        None => "an anonymous user".to_string(),
    };
    let from = ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
    println!("Checking {} {} (path {}) for {who}{from}\n", object.method, target, object.path);
    println!(
        "{:>4}  {:<10}  {:<6}  {:<8}  {:<5}  {:<6}  {:<7}  {:<7}  result",
        "rule", "policy", "domain", "resource", "query", "method", "network", "subject"
    );
    let mark = |b: bool| if b { "hit" } else { "miss" };
    for r in engine.explain(&subject, &object) {
        let subject_text = match (r.subjects_exact, r.subjects) {
            (true, _) => "hit",
            (false, true) => "may",
            (false, false) => "miss",
        };
        let all = r.domain && r.resources && r.query && r.methods && r.networks && r.subjects;
        let result = if r.decided {
            "<- decides"
        } else if all {
            "(after the deciding rule)"
        } else {
            ""
        };
        println!(
            "{:>4}  {:<10}  {:<6}  {:<8}  {:<5}  {:<6}  {:<7}  {:<7}  {result}",
            r.position,
            r.policy.as_str(),
            mark(r.domain),
            mark(r.resources),
            mark(r.query),
            mark(r.methods),
            mark(r.networks),
            subject_text
        );
    }
    match decision.rule {
        Some(rule) => println!(
            "\nPolicy: {} (rule {rule}){}",
            decision.policy,
            if decision.has_subjects && subject.is_anonymous() {
                "; an anonymous request is asked to log in"
            } else {
                ""
            }
        ),
        None => println!("\nPolicy: {} (default_policy; no rule matched)", decision.policy),
    }
    ExitCode::SUCCESS
}

fn read_password(given: Option<String>) -> Result<String, String> {
    if let Some(password) = given {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() { Err("no password given (use --password or standard input)".into()) } else { Ok(password) }
}

fn crypto_hash(args: &ConfigArgs, command: HashCommand) -> ExitCode {
    use crate::authn::password;
    match command {
        HashCommand::Generate { algorithm, variant, password, random } => {
            let mut params = if config_paths(args).is_empty() {
                crate::config::schema::PasswordHashing::default()
            } else {
                match load_or_report(args, false) {
                    Some(loaded) => loaded.config.authentication_backend.file.unwrap_or_default().password,
                    None => return ExitCode::FAILURE,
                }
            };
            if let Some(algorithm) = algorithm {
                params.algorithm = algorithm;
            }
            if let Some(variant) = variant {
                let slot = match params.algorithm.as_str() {
                    "argon2" => &mut params.argon2.variant,
                    "sha2crypt" => &mut params.sha2crypt.variant,
                    "pbkdf2" => &mut params.pbkdf2.variant,
                    "bcrypt" => &mut params.bcrypt.variant,
                    _ => &mut params.scrypt.variant,
                };
                *slot = variant;
            }
            let password = if random {
                use rand::Rng;
                let generated: String =
                    rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
                println!("Random Password: {generated}");
                generated
            } else {
                match read_password(password) {
                    Ok(p) => p,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            };
            match password::hash(&password, &params) {
                Ok(digest) => {
                    println!("Digest: {digest}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        HashCommand::Validate { password, digest } => {
            let password = match read_password(password) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            match password::verify(&password, &digest) {
                Ok(true) => {
                    println!("The password matches the digest.");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!("The password does not match the digest.");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn import_users(args: &ConfigArgs, file: &std::path::Path) -> ExitCode {
    let Some(loaded) = load_or_report(args, true) else { return ExitCode::FAILURE };
    if loaded.config.authentication_backend.database.is_none() {
        eprintln!("error: authentication_backend.database is not configured: there is nowhere to import to");
        return ExitCode::FAILURE;
    }
    if !file.is_file() {
        eprintln!("error: '{}' is not a file", file.display());
        return ExitCode::FAILURE;
    }
    let Some(runtime) = crate::cli::command_runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(import_users_with(&loaded.config, file)) {
        Ok((imported, skipped)) => {
            println!("Imported {imported} user(s); {skipped} existed already and were left as they are.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn import_users_with(config: &config::Configuration, file: &std::path::Path) -> Result<(usize, usize), String> {
    use crate::authn::users::{Users, UsersError};
    let source = crate::authn::users_file::UsersFile::open(file, false, false).map_err(|e| e.to_string())?;
    let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
    let storage = crate::storage::Storage::open(&config.storage, certificates).await.map_err(|e| e.to_string())?;
    let users = Users::open(config, &storage).map_err(|e| e.to_string())?;
    let (mut imported, mut skipped) = (0, 0);
    for user in source.snapshot().all() {
        match users.create((*user).clone(), crate::clock::now()).await {
            Ok(()) => {
                imported += 1;
                println!("imported {}", user.username);
            }
            Err(UsersError::UserExists(name)) => {
                skipped += 1;
                println!("exists   {name}");
            }
            Err(e) => return Err(format!("{}: {e}", user.username)),
        }
    }
    Ok((imported, skipped))
}

/// `bootstrap token`: a fresh token, unless users exist (then it could not be used).
fn bootstrap_token(args: &ConfigArgs, ttl: &str) -> ExitCode {
    let ttl = match crate::authn::bootstrap::parse_lifetime(ttl) {
        Ok(ttl) => ttl,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(loaded) = load_or_report(args, true) else { return ExitCode::FAILURE };
    let Some(runtime) = crate::cli::command_runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(bootstrap_token_with(&loaded.config, ttl)) {
        Ok(Some((token, expires_at))) => {
            let when = crate::clock::rfc3339(expires_at);
            println!("{token}");
            println!("expires at {when} (Unix time {expires_at})");
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("warning: setup is complete (users exist): a bootstrap token could not be used; none was issued");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bootstrap_token_with(
    config: &config::Configuration,
    ttl: std::time::Duration,
) -> Result<Option<(String, i64)>, String> {
    use crate::authn::bootstrap;
    let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
    let storage = crate::storage::Storage::open(&config.storage, certificates).await.map_err(|e| e.to_string())?;
    let users = crate::authn::users::Users::open(config, &storage).map_err(|e| e.to_string())?;
    if users.writable().is_err() || users.any().await.map_err(|e| e.to_string())? {
        return Ok(None);
    }
    let issued = bootstrap::issue(&storage, bootstrap::BY_CLI, ttl, crate::clock::now()).await;
    issued.map(Some).map_err(|e| format!("storage: {e}"))
}

fn storage_command(args: &ConfigArgs, action: crate::cli_storage::Action) -> ExitCode {
    let Some(loaded) = load_or_report(args, true) else { return ExitCode::FAILURE };
    crate::cli_storage::run(&loaded.config, action)
}

fn migrate(args: &ConfigArgs, action: &MigrateCommand) -> ExitCode {
    let Some(loaded) = load_or_report(args, true) else { return ExitCode::FAILURE };
    let Some(runtime) = crate::cli::command_runtime() else { return ExitCode::FAILURE };
    match runtime.block_on(migrate_with(&loaded.config, action)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate_with(
    config: &config::Configuration,
    action: &MigrateCommand,
) -> Result<(), crate::storage::StorageError> {
    let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
    let storage = crate::storage::Storage::connect(&config.storage, certificates)?;
    match action {
        MigrateCommand::Up => {
            let done = storage.migrate_up().await?;
            if done.is_empty() {
                println!("The schema is up to date.");
            }
            for version in done {
                println!("Applied {version}");
            }
        }
        MigrateCommand::Down => match storage.migrate_down().await? {
            Some(version) => println!("Reverted {version}"),
            None => println!("No migration to revert."),
        },
        MigrateCommand::Status => {
            let status = storage.migration_status().await?;
            for version in &status.applied {
                println!("applied  {version}");
            }
            for name in &status.pending {
                println!("pending  {name}");
            }
        }
    }
    Ok(())
}

/// The single-threaded runtime a command runs its storage work on; `None` (reported)
/// when it cannot start.
pub(crate) fn command_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// Stack size of the runtime's worker threads.
const WORKER_STACK: usize = 8 << 20;

fn serve(args: &ConfigArgs) -> ExitCode {
    let Some(Loaded { mut config, warnings, embedded, sources }) = load_or_report(args, true) else {
        eprintln!("Portcullis cannot start: fix the configuration errors above.");
        return ExitCode::FAILURE;
    };
    if let Some(host) = &args.auth_host {
        if let Err(problem) = crate::server::host_mode::HostMode::new(Some(host)) {
            eprintln!("error: --auth-host (server.auth_host): {problem}");
            return ExitCode::FAILURE;
        }
        config.server.auth_host = Some(host.clone());
    }
    // Request handling nests many async layers (middleware, the API, a flow, a store);
    // unoptimized builds give each poll a large frame, and 2 MiB (the default) left too
    // little room. Only reserved address space until used.
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(WORKER_STACK).build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The gRPC trace exporter starts its connection task on the runtime.
    let entered = runtime.enter();
    let traces = match crate::telemetry::traces::install(&config.telemetry.traces) {
        Ok(traces) => traces,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tracing, layer) = traces.unzip();
    let _log_guard = match crate::logging::init(&config.log, layer) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    drop(entered);
    for source in &sources {
        tracing::info!("configuration {source}");
    }
    for w in &warnings {
        tracing::warn!("configuration: {w}");
    }
    if config.telemetry.traces.enabled {
        let t = &config.telemetry.traces;
        let endpoint = crate::telemetry::traces::endpoint(t).unwrap_or_default();
        tracing::info!(endpoint = %endpoint, protocol = %t.protocol, sampling_ratio = t.sampling_ratio, "traces: exporting over OTLP");
    }
    let config = Arc::new(config);
    let result = runtime.block_on(run(config, embedded, options(args, true)));
    // Queued spans leave while the runtime (which the gRPC exporter runs on) still runs.
    if let Some(tracing) = tracing {
        tracing.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Arc<config::Configuration>, embedded: bool, reload_with: LoadOptions) -> Result<(), String> {
    let services = crate::services::Services::open(&config).await?;
    let app = Arc::new(crate::server::App::new(config.clone(), services)?);
    crate::reload::start(app.clone(), reload_with);
    crate::invalidation::listen(app.clone());
    crate::flows::audit::prune_periodically(app.clone());
    crate::flows::oidc::purge_periodically(app.clone());
    let address = &config.server.address;
    let listener =
        crate::server::Listener::bind(address).await.map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let metrics = start_metrics(&app).await?;
    let portals: Vec<String> =
        config.session.cookies.iter().filter_map(|c| c.authelia_url.as_ref().map(|u| u.url().to_string())).collect();
    tracing::info!(
        address = %listener.local_description(),
        portal = %portals.join(", "),
        version = env!("CARGO_PKG_VERSION"),
        "Portcullis is listening"
    );
    if embedded {
        tracing::info!(
            "running the embedded default configuration (no --config given): data in {}, memory sessions; portal at {}",
            config::embedded::DATA_DIR,
            portals.first().map(String::as_str).unwrap_or_default()
        );
    }
    crate::server::serve(listener, app, crate::server::shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    if let Some((stop, task)) = metrics {
        let _ = stop.send(());
        let _ = task.await;
    }
    tracing::info!("Portcullis stopped");
    Ok(())
}

type MetricsTask = (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>);

/// Installs the metrics and starts their listener, when `telemetry.metrics.enabled`; it
/// stops when the returned sender is used (after the server has drained).
async fn start_metrics(app: &Arc<crate::server::App>) -> Result<Option<MetricsTask>, String> {
    let config = &app.config.telemetry.metrics;
    if !config.enabled {
        return Ok(None);
    }
    crate::telemetry::metrics::install()?;
    let address = &config.address;
    let listener = crate::server::Listener::bind(address)
        .await
        .map_err(|e| format!("cannot listen for metrics on {address} (telemetry.metrics.address): {e}"))?;
    let path = if address.base_path.is_empty() { "/metrics" } else { address.base_path.as_str() };
    tracing::info!(address = %listener.local_description(), path, "metrics: Prometheus endpoint listening");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(crate::telemetry::listener::serve(listener, app.clone(), async move {
        let _ = stopped.await;
    }));
    Ok(Some((stop, task)))
}
