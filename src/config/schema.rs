//! The configuration schema, with Authelia's key names so an Authelia `configuration.yml`
//! loads unchanged.
//!
//! Every struct is `#[serde(default)]` and required values are `Option`s: deserialization
//! only checks syntax and types, and `validate` reports what is missing or inconsistent
//! with the key path of each problem. That split is what lets the loader report *every*
//! problem of a file in one run rather than stopping at the first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::oidc::*;
use super::types::{AbsoluteUrl, Duration, ListenAddress, OneOrMany, Secret};
pub use crate::access_control::Policy;
pub use crate::authz::{Implementation, Strategy};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Configuration {
    /// Portal colour scheme: light, dark, grey or auto.
    pub theme: String,
    /// Second-factor method offered first to users with no preference.
    pub default_2fa_method: String,
    /// Listener, endpoints, buffers and timeouts.
    pub server: Server,
    /// Log level and format.
    pub log: Log,
    /// Where users and their passwords come from.
    pub authentication_backend: AuthenticationBackend,
    /// Rules new passwords must follow.
    pub password_policy: PasswordPolicy,
    /// Session cookies and the session store.
    pub session: Session,
    /// Brute-force protection.
    pub regulation: Regulation,
    /// The SQL database.
    pub storage: Storage,
    /// How mail reaches users.
    pub notifier: Notifier,
    /// Time-based one-time passwords.
    pub totp: Totp,
    /// Security keys and passkeys.
    pub webauthn: WebAuthn,
    /// One-time codes sent by mail as a second factor.
    pub email_otp: EmailOtp,
    /// One-time tokens for password reset and session elevation.
    pub identity_validation: IdentityValidation,
    /// Reusable named definitions (networks).
    pub definitions: Definitions,
    /// Who may reach what.
    pub access_control: AccessControl,
    /// Directory of PEM certificate authorities trusted for outgoing TLS (the database and
    /// LDAP connections) in addition to the system's.
    pub certificates_directory: Option<String>,
    /// Prometheus metrics and OpenTelemetry traces.
    pub telemetry: Telemetry,
    /// Who may administer users, bans and sessions (Portcullis' extension).
    pub admin: Admin,
    /// The audit trail of security events (Portcullis' extension).
    pub audit: Audit,
    /// The account API under `/api/auth` with bearer tokens (Portcullis' extension).
    pub account_api: AccountApi,
    /// Registration by referral (Portcullis' extension).
    pub signup: Signup,
    /// Identity providers Portcullis acts as (OpenID Connect).
    pub identity_providers: IdentityProviders,
    /// Personal API tokens (Portcullis' extension, seed 001).
    pub api_tokens: ApiTokens,
    /// Sign-in through an upstream OpenID provider (Portcullis' extension, seed 003);
    /// settings stored by `PUT /auth/provider/oidc` take precedence.
    pub upstream_oidc: UpstreamOidc,
}

/// `upstream_oidc`: an OpenID provider users may sign in with ("Sign in with ...").
/// Not configured while `issuer` is empty. The same shape is what `/auth/provider/oidc`
/// reads and writes.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct UpstreamOidc {
    /// The provider's issuer URL (discovery is read from below it).
    pub issuer: String,
    /// This server's client ID there.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: Secret,
    /// The button's label: "Sign in with {display_name}".
    pub display_name: String,
    /// Scopes asked for (`openid` is always added).
    pub scopes: Vec<String>,
    /// Which claims carry the username, the address and the groups.
    pub claims: UpstreamClaims,
    /// When not empty, only addresses in these domains may sign in.
    pub allowed_email_domains: Vec<String>,
    /// Create a user (database or file backend) for an upstream account nobody has yet.
    pub create_users: bool,
    /// Link an upstream account to the local user with the same verified address.
    pub link_by_email: bool,
    /// Count the upstream's multi-factor sign-in (`amr` with `mfa`) as both factors here.
    pub trust_upstream_mfa: bool,
}

impl Default for UpstreamOidc {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: Secret::default(),
            display_name: String::new(),
            scopes: vec!["openid".into(), "profile".into(), "email".into(), "groups".into()],
            claims: UpstreamClaims::default(),
            allowed_email_domains: Vec::new(),
            create_users: false,
            link_by_email: false,
            trust_upstream_mfa: false,
        }
    }
}

impl UpstreamOidc {
    /// Whether a provider is configured.
    pub fn is_configured(&self) -> bool {
        !self.issuer.is_empty()
    }
}

/// `upstream_oidc.claims`: claim names.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct UpstreamClaims {
    /// The login name (for users it creates).
    pub username: String,
    /// The address.
    pub email: String,
    /// The group list (for users it creates).
    pub groups: String,
}

impl Default for UpstreamClaims {
    fn default() -> Self {
        Self { username: "preferred_username".into(), email: "email".into(), groups: "groups".into() }
    }
}

/// `api_tokens`: long-lived personal tokens users create for scripts, usable at the
/// authorization endpoints as `Authorization: Bearer` (or Basic with the token as the
/// password) where the endpoint's strategy allows.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ApiTokens {
    /// The token endpoints are served and tokens are accepted at the proxy.
    pub enabled: bool,
    /// Most tokens in force one user may have.
    pub max_per_user: u32,
    /// Longest lifetime a token may be given; tokens without one get it (0: no limit, and
    /// tokens without an expiry are allowed).
    pub max_lifespan: Duration,
    /// How long a verified token is remembered by each instance: revocation elsewhere
    /// (another instance, the database edited by hand) takes at most this long to be seen.
    pub cache_lifespan: Duration,
}

impl Default for ApiTokens {
    fn default() -> Self {
        Self {
            enabled: false,
            max_per_user: 50,
            max_lifespan: Duration::from_secs(0),
            cache_lifespan: Duration::from_secs(30),
        }
    }
}

/// `admin`: the admin API's audience.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Admin {
    /// Members of this group are administrators.
    pub group: String,
    /// Administrators must have passed two factors.
    pub require_two_factor: bool,
}

impl Default for Admin {
    fn default() -> Self {
        Self { group: "admins".into(), require_two_factor: true }
    }
}

/// `account_api`: the account API for scripts and single-page apps (`/api/auth/...`),
/// whose bearer tokens are short-lived signed JWTs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct AccountApi {
    /// Serve it.
    pub enabled: bool,
    /// The HMAC key signing its tokens (at least 32 characters); generated and kept sealed
    /// in storage when not set.
    pub jwt_secret: Secret,
    /// How long a token is valid.
    pub token_lifespan: Duration,
}

impl Default for AccountApi {
    fn default() -> Self {
        Self { enabled: false, jwt_secret: Secret::default(), token_lifespan: Duration::from_secs(3600) }
    }
}

/// `signup`: new accounts in the database users backend, only with a referral token.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Signup {
    /// Accept registrations.
    pub enabled: bool,
    /// How long a referral token is valid.
    pub referral_lifespan: Duration,
    /// How many accounts one referral token may create.
    pub referral_uses: u32,
    /// Most referral tokens a user may have valid at once.
    pub referrals_per_user: u32,
}

impl Default for Signup {
    fn default() -> Self {
        Self {
            enabled: false,
            referral_lifespan: Duration::from_secs(7 * 86_400),
            referral_uses: 1,
            referrals_per_user: 10,
        }
    }
}

/// `audit`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Audit {
    /// How long events are kept (0 keeps them forever).
    pub retention: Duration,
}

impl Default for Audit {
    fn default() -> Self {
        Self { retention: Duration::from_secs(90 * 24 * 3600) }
    }
}

// ---------------------------------------------------------------- server

/// `server`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Server {
    /// `tcp://host:port/base-path`.
    pub address: ListenAddress,
    /// Authelia's health-check script switch; accepted for compatibility.
    pub disable_healthcheck: bool,
    /// HTTP buffer sizes (bytes).
    pub buffers: ServerBuffers,
    /// Connection timeouts.
    pub timeouts: ServerTimeouts,
    /// Named endpoints.
    pub endpoints: ServerEndpoints,
    /// Response header settings.
    pub headers: ServerHeaders,
    /// TLS on the listener (HTTP/1.1 and HTTP/2 through ALPN), with optional client
    /// certificates (mutual TLS).
    pub tls: ServerTls,
    /// Peers (CIDRs or IPs) whose X-Forwarded-For is believed when finding the client's
    /// address; any other peer is itself the client. Portcullis-specific (Authelia trusts
    /// the header from anyone). Default: loopback only.
    pub trusted_proxies: Option<Vec<String>>,
    /// Most connections served at once; further ones wait in the listen backlog until one
    /// closes. Portcullis-specific. Default: 4096.
    pub max_connections: Option<usize>,
    /// Seed 004's dedicated authentication host (`auth.example.com`, or an origin): it
    /// serves the portal at its root; other hosts show an account summary, send portal
    /// pages there (307) and hide the user, admin and WebSocket namespaces of `/auth/`.
    /// Also `--auth-host` and `PORTCULLIS_AUTH_HOST`. Default: none (every host alike).
    pub auth_host: Option<String>,
}

/// `server.tls`: the listener's certificate and key; TLS is off while both are empty.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerTls {
    /// Path of the PEM certificate chain (leaf first).
    pub certificate: String,
    /// Path of the PEM private key.
    pub key: String,
    /// Paths of PEM certificate authorities; when any is given, every client must present
    /// a certificate one of them signed.
    pub client_certificates: Vec<String>,
}

impl ServerTls {
    /// True when the listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.certificate.is_empty() || !self.key.is_empty()
    }
}

/// Connections served at once when `server.max_connections` is not set.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// `server.buffers`: the largest request head (read) and the response write buffer.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerBuffers {
    /// Bytes allowed for a request's head (request line plus headers).
    pub read: usize,
    /// Bytes of the response write buffer.
    pub write: usize,
}

impl Default for ServerBuffers {
    fn default() -> Self {
        Self { read: 4096, write: 4096 }
    }
}

/// `server.timeouts`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerTimeouts {
    /// Time allowed to read a request head (guards against slowloris).
    pub read: Duration,
    /// Time allowed to produce and write a response.
    pub write: Duration,
    /// How long an idle keep-alive connection stays open.
    pub idle: Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        Self { read: Duration::from_secs(6), write: Duration::from_secs(6), idle: Duration::from_secs(30) }
    }
}

/// `server.endpoints`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerEndpoints {
    /// Authorization endpoints by name: `/api/authz/<name>` (`legacy` is `/api/verify`).
    pub authz: BTreeMap<String, AuthzEndpoint>,
}

impl Default for ServerEndpoints {
    fn default() -> Self {
        let basic_then_cookie = || {
            vec![
                AuthnStrategy {
                    name: Some(Strategy::HeaderAuthorization),
                    schemes: vec!["Basic".into()],
                    ..Default::default()
                },
                AuthnStrategy { name: Some(Strategy::CookieSession), ..Default::default() },
            ]
        };
        let mut authz = BTreeMap::new();
        let endpoint =
            |implementation, authn_strategies| AuthzEndpoint { implementation: Some(implementation), authn_strategies };
        authz.insert(
            "legacy".into(),
            endpoint(
                Implementation::Legacy,
                vec![
                    AuthnStrategy { name: Some(Strategy::HeaderLegacy), ..Default::default() },
                    AuthnStrategy { name: Some(Strategy::CookieSession), ..Default::default() },
                ],
            ),
        );
        authz.insert("auth-request".into(), endpoint(Implementation::AuthRequest, basic_then_cookie()));
        authz.insert("ext-authz".into(), endpoint(Implementation::ExtAuthz, basic_then_cookie()));
        authz.insert("forward-auth".into(), endpoint(Implementation::ForwardAuth, basic_then_cookie()));
        Self { authz }
    }
}

/// One `server.endpoints.authz.<name>` entry.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthzEndpoint {
    /// ForwardAuth, AuthRequest, ExtAuthz or Legacy.
    pub implementation: Option<Implementation>,
    /// How requests are authenticated, tried in order.
    pub authn_strategies: Vec<AuthnStrategy>,
}

/// One authentication strategy of an authz endpoint.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthnStrategy {
    /// CookieSession, HeaderAuthorization, HeaderProxyAuthorization,
    /// HeaderAuthRequestProxyAuthorization or HeaderLegacy.
    pub name: Option<Strategy>,
    /// Authorization schemes accepted by header strategies (Basic, Bearer).
    pub schemes: Vec<String>,
    /// How long a verified Basic credential is remembered (0 = never).
    pub scheme_basic_cache_lifespan: Duration,
}

/// `server.headers`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerHeaders {
    /// Content-Security-Policy for portal pages; `${NONCE}` is replaced per response.
    pub csp_template: String,
}

// ---------------------------------------------------------------- log

/// `log`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Log {
    /// trace, debug, info, warn or error.
    pub level: String,
    /// text or json.
    pub format: String,
    /// Also write logs to this file (`%d` is replaced by the start time).
    pub file_path: String,
    /// Keep logging to stdout when `file_path` is set.
    pub keep_stdout: bool,
}

impl Default for Log {
    fn default() -> Self {
        Self { level: "info".into(), format: "text".into(), file_path: String::new(), keep_stdout: false }
    }
}

// ---------------------------------------------------------------- authentication backend

/// `authentication_backend`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthenticationBackend {
    /// Password reset through the portal.
    pub password_reset: PasswordReset,
    /// Password change through the portal.
    pub password_change: PasswordChange,
    /// Users in a YAML file.
    pub file: Option<FileBackend>,
    /// Users in the storage database (Portcullis' extension: managed through the admin
    /// API and console).
    pub database: Option<DatabaseBackend>,
    /// Users in an LDAP directory.
    pub ldap: Option<LdapBackend>,
}

/// `authentication_backend.ldap`: users in an LDAP directory. Empty strings stand for the
/// `implementation`'s defaults; [`LdapBackend::effective`] fills them in.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LdapBackend {
    /// `ldap://host:port`, `ldaps://host:port` or `ldapi:///path/to/socket`.
    pub address: Option<String>,
    /// custom, activedirectory, rfc2307bis, freeipa, lldap or glauth: the defaults of the
    /// filters and attributes.
    pub implementation: String,
    /// Connecting, binding and each search or modification give up after this long.
    pub timeout: Duration,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub start_tls: bool,
    /// TLS for `ldaps://` and StartTLS.
    pub tls: Option<Tls>,
    /// The base of every search.
    pub base_dn: String,
    /// Prefixed to `base_dn` for user searches.
    pub additional_users_dn: String,
    /// Finds a user by what they typed (`{input}`).
    pub users_filter: String,
    /// Prefixed to `base_dn` for group searches.
    pub additional_groups_dn: String,
    /// Finds a user's groups (`{dn}`, `{username}`, `{input}`, `{memberof:rdn}`, `{memberof:dn}`).
    pub groups_filter: String,
    /// filter (groups that match `groups_filter`) or memberof (groups the user's member-of
    /// attribute names, found with `groups_filter`).
    pub group_search_mode: String,
    /// Attribute names.
    pub attributes: LdapAttributes,
    /// Follow referrals the server returns for user searches.
    pub permit_referrals: bool,
    /// Search without a service bind (refused unless set).
    pub permit_unauthenticated_bind: bool,
    /// Go on when the server's supported features (its root DSE) cannot be read: passwords
    /// are then set by replacing `userPassword`. Otherwise nothing works until they can be.
    pub permit_feature_detection_failure: bool,
    /// The service account's DN.
    pub user: String,
    /// The service account's password.
    pub password: Secret,
    /// Connections of the service account kept open for searches.
    pub pooling: LdapPooling,
    /// How long a user looked up in the directory is remembered for the proxy's Basic
    /// checks, the portal's pages and admin reads (Portcullis' extension; 0 disables).
    /// Logins always search the directory afresh.
    pub cache_lifespan: Duration,
}

impl Default for LdapBackend {
    fn default() -> Self {
        Self {
            address: None,
            implementation: "custom".into(),
            timeout: Duration::from_secs(5),
            start_tls: false,
            tls: None,
            base_dn: String::new(),
            additional_users_dn: String::new(),
            users_filter: String::new(),
            additional_groups_dn: String::new(),
            groups_filter: String::new(),
            group_search_mode: String::new(),
            attributes: LdapAttributes::default(),
            permit_referrals: false,
            permit_unauthenticated_bind: false,
            permit_feature_detection_failure: false,
            user: String::new(),
            password: Secret::default(),
            pooling: LdapPooling::default(),
            cache_lifespan: Duration::from_secs(60),
        }
    }
}

/// `authentication_backend.ldap.attributes`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LdapAttributes {
    /// An attribute holding the entry's own DN (Active Directory's distinguishedName).
    pub distinguished_name: String,
    /// The username.
    pub username: String,
    /// The display name.
    pub display_name: String,
    /// Email addresses.
    pub mail: String,
    /// The DNs of the user's groups.
    pub member_of: String,
    /// A group's name.
    pub group_name: String,
}

/// `authentication_backend.ldap.pooling`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct LdapPooling {
    /// Keep service connections open between searches.
    pub enable: bool,
    /// Most idle connections kept.
    pub count: u32,
    /// Further tries of an operation whose connection turned out to be dead.
    pub retries: u32,
    /// How long to wait for a connection.
    pub timeout: Duration,
}

impl Default for LdapPooling {
    fn default() -> Self {
        Self { enable: true, count: 5, retries: 2, timeout: Duration::from_secs(10) }
    }
}

/// One implementation's defaults: users filter, groups filter, additional users DN,
/// additional groups DN, and the attributes (distinguished name, username, display name,
/// mail, member of, group name). Authelia's values.
struct LdapDefaults {
    users_filter: &'static str,
    groups_filter: &'static str,
    users_dn: &'static str,
    groups_dn: &'static str,
    attributes: [&'static str; 6],
}

/// The implementations and their defaults.
pub const LDAP_IMPLEMENTATIONS: &[&str] = &["custom", "activedirectory", "rfc2307bis", "freeipa", "lldap", "glauth"];

fn ldap_defaults(implementation: &str) -> LdapDefaults {
    match implementation {
        "activedirectory" => LdapDefaults {
            users_filter: concat!(
                "(&(|({username_attribute}={input})({mail_attribute}={input}))(sAMAccountType=805306368)",
                "(!(userAccountControl:1.2.840.113556.1.4.803:=2))(!(pwdLastSet=0))",
                "(|(!(accountExpires=*))(accountExpires=0)(accountExpires>={date-time:microsoft-nt})))"
            ),
            groups_filter: "(&(member={dn})(|(sAMAccountType=268435456)(sAMAccountType=536870912)))",
            users_dn: "",
            groups_dn: "",
            attributes: ["distinguishedName", "sAMAccountName", "displayName", "mail", "memberOf", "cn"],
        },
        "rfc2307bis" => LdapDefaults {
            users_filter: concat!(
                "(&(|({username_attribute}={input})({mail_attribute}={input}))",
                "(|(objectClass=inetOrgPerson)(objectClass=organizationalPerson))(!(pwdReset=TRUE)))"
            ),
            groups_filter: concat!(
                "(&(|(member={dn})(uniqueMember={dn}))",
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=groupOfMembers)))"
            ),
            users_dn: "",
            groups_dn: "",
            attributes: ["", "uid", "displayName", "mail", "memberOf", "cn"],
        },
        "freeipa" => LdapDefaults {
            users_filter: concat!(
                "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person)",
                "(!(nsAccountLock=TRUE))(krbPasswordExpiration>={date-time:generalized})",
                "(|(!(krbPrincipalExpiration=*))(krbPrincipalExpiration>={date-time:generalized})))"
            ),
            groups_filter: "(&(member={dn})(objectClass=groupOfNames))",
            users_dn: "",
            groups_dn: "",
            attributes: ["", "uid", "displayName", "mail", "memberOf", "cn"],
        },
        "lldap" => LdapDefaults {
            users_filter: "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=person))",
            groups_filter: "(&(member={dn})(objectClass=groupOfNames))",
            users_dn: "ou=people",
            groups_dn: "ou=groups",
            attributes: ["", "uid", "cn", "mail", "memberOf", "cn"],
        },
        "glauth" => LdapDefaults {
            users_filter: concat!(
                "(&(|({username_attribute}={input})({mail_attribute}={input}))(objectClass=posixAccount)",
                "(!(accountStatus=inactive)))"
            ),
            groups_filter: "(&(uniqueMember={dn})(objectClass=posixGroup))",
            users_dn: "",
            groups_dn: "",
            attributes: ["", "cn", "description", "mail", "memberOf", "cn"],
        },
        // custom: no filters; the usual attribute names.
        _ => LdapDefaults {
            users_filter: "",
            groups_filter: "",
            users_dn: "",
            groups_dn: "",
            attributes: ["", "uid", "displayName", "mail", "", "cn"],
        },
    }
}

impl LdapBackend {
    /// This configuration with every empty filter, search base and attribute set to the
    /// `implementation`'s default, and `group_search_mode` to filter.
    pub fn effective(&self) -> Self {
        let d = ldap_defaults(&self.implementation);
        let or = |value: &str, default: &str| if value.is_empty() { default.to_string() } else { value.to_string() };
        let a = &self.attributes;
        let [dn, username, display_name, mail, member_of, group_name] = d.attributes;
        Self {
            users_filter: or(&self.users_filter, d.users_filter),
            groups_filter: or(&self.groups_filter, d.groups_filter),
            additional_users_dn: or(&self.additional_users_dn, d.users_dn),
            additional_groups_dn: or(&self.additional_groups_dn, d.groups_dn),
            group_search_mode: or(&self.group_search_mode, "filter"),
            attributes: LdapAttributes {
                distinguished_name: or(&a.distinguished_name, dn),
                username: or(&a.username, username),
                display_name: or(&a.display_name, display_name),
                mail: or(&a.mail, mail),
                member_of: or(&a.member_of, member_of),
                group_name: or(&a.group_name, group_name),
            },
            ..self.clone()
        }
    }
}

/// `authentication_backend.password_reset`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PasswordReset {
    /// Turn password reset off.
    pub disable: bool,
    /// Send users to an external reset page instead.
    pub custom_url: Option<AbsoluteUrl>,
}

/// `authentication_backend.password_change`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PasswordChange {
    /// Turn password change off.
    pub disable: bool,
    /// Also require an elevated session (an emailed code), not just the old password.
    pub require_elevation: bool,
}

/// `authentication_backend.file`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FileBackend {
    /// Path of the users database (created empty when missing).
    pub path: Option<String>,
    /// Reload the file when it changes.
    pub watch: bool,
    /// Login lookup options.
    pub search: FileSearch,
    /// Hashing of new passwords.
    pub password: PasswordHashing,
}

/// `authentication_backend.database`: users in the storage database.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseBackend {
    /// Login lookup options.
    pub search: FileSearch,
    /// Hashing of new passwords.
    pub password: PasswordHashing,
}

impl AuthenticationBackend {
    /// How new passwords are hashed, for whichever users backend is configured.
    pub fn password_hashing(&self) -> PasswordHashing {
        match (&self.database, &self.file) {
            (Some(db), _) => db.password.clone(),
            (None, Some(file)) => file.password.clone(),
            (None, None) => PasswordHashing::default(),
        }
    }
}

/// `authentication_backend.file.search`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FileSearch {
    /// Allow logging in with the email address.
    pub email: bool,
    /// Match usernames case-insensitively.
    pub case_insensitive: bool,
}

/// `authentication_backend.file.password`: the algorithm and parameters for new hashes.
/// Existing hashes of every supported kind verify whatever is chosen here.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct PasswordHashing {
    /// argon2, sha2crypt, pbkdf2, bcrypt or scrypt.
    pub algorithm: String,
    /// Argon2 parameters.
    pub argon2: Argon2Params,
    /// SHA-2 crypt parameters.
    pub sha2crypt: Sha2CryptParams,
    /// PBKDF2 parameters.
    pub pbkdf2: Pbkdf2Params,
    /// bcrypt parameters.
    pub bcrypt: BcryptParams,
    /// scrypt parameters.
    pub scrypt: ScryptParams,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            algorithm: "argon2".into(),
            argon2: Argon2Params::default(),
            sha2crypt: Sha2CryptParams::default(),
            pbkdf2: Pbkdf2Params::default(),
            bcrypt: BcryptParams::default(),
            scrypt: ScryptParams::default(),
        }
    }
}

/// Argon2 parameters (memory in KiB).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Argon2Params {
    /// argon2id, argon2i or argon2d.
    pub variant: String,
    /// Passes over memory.
    pub iterations: u32,
    /// Memory in KiB.
    pub memory: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Output length in bytes.
    pub key_length: u32,
    /// Salt length in bytes.
    pub salt_length: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            variant: "argon2id".into(),
            iterations: 3,
            memory: 65536,
            parallelism: 4,
            key_length: 32,
            salt_length: 16,
        }
    }
}

/// SHA-2 crypt parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Sha2CryptParams {
    /// sha256 or sha512.
    pub variant: String,
    /// Rounds.
    pub iterations: u32,
    /// Salt length in characters.
    pub salt_length: u32,
}

impl Default for Sha2CryptParams {
    fn default() -> Self {
        Self { variant: "sha512".into(), iterations: 50000, salt_length: 16 }
    }
}

/// PBKDF2 parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Pbkdf2Params {
    /// sha1, sha224, sha256, sha384 or sha512.
    pub variant: String,
    /// Rounds.
    pub iterations: u32,
    /// Salt length in bytes.
    pub salt_length: u32,
}

impl Default for Pbkdf2Params {
    fn default() -> Self {
        Self { variant: "sha512".into(), iterations: 310_000, salt_length: 16 }
    }
}

/// bcrypt parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct BcryptParams {
    /// standard or sha256.
    pub variant: String,
    /// Cost factor.
    pub cost: u32,
}

impl Default for BcryptParams {
    fn default() -> Self {
        Self { variant: "standard".into(), cost: 12 }
    }
}

/// scrypt parameters.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ScryptParams {
    /// scrypt (yescrypt is not supported).
    pub variant: String,
    /// log2 of N.
    pub iterations: u32,
    /// r.
    pub block_size: u32,
    /// p.
    pub parallelism: u32,
    /// Output length in bytes.
    pub key_length: u32,
    /// Salt length in bytes.
    pub salt_length: u32,
}

impl Default for ScryptParams {
    fn default() -> Self {
        Self {
            variant: "scrypt".into(),
            iterations: 16,
            block_size: 8,
            parallelism: 1,
            key_length: 32,
            salt_length: 16,
        }
    }
}

// ---------------------------------------------------------------- password policy

/// `password_policy`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct PasswordPolicy {
    /// Length and character-class rules.
    pub standard: StandardPasswordPolicy,
    /// Strength estimation with zxcvbn.
    pub zxcvbn: ZxcvbnPasswordPolicy,
}

/// `password_policy.standard`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct StandardPasswordPolicy {
    /// Enforce this policy.
    pub enabled: bool,
    /// Minimum length in characters.
    pub min_length: u32,
    /// Maximum length in characters (0 = no limit).
    pub max_length: u32,
    /// Require an upper-case letter.
    pub require_uppercase: bool,
    /// Require a lower-case letter.
    pub require_lowercase: bool,
    /// Require a digit.
    pub require_number: bool,
    /// Require a character that is neither letter nor digit.
    pub require_special: bool,
}

impl Default for StandardPasswordPolicy {
    fn default() -> Self {
        Self {
            enabled: false,
            min_length: 8,
            max_length: 0,
            require_uppercase: false,
            require_lowercase: false,
            require_number: false,
            require_special: false,
        }
    }
}

/// `password_policy.zxcvbn`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ZxcvbnPasswordPolicy {
    /// Enforce this policy.
    pub enabled: bool,
    /// Minimum zxcvbn score, 1 to 4.
    pub min_score: u32,
}

impl Default for ZxcvbnPasswordPolicy {
    fn default() -> Self {
        Self { enabled: false, min_score: 3 }
    }
}

// ---------------------------------------------------------------- session

/// `session`. The top-level name, same_site and durations are defaults for each cookie.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Session {
    /// Key for session data at rest in Redis.
    pub secret: Secret,
    /// Default cookie name.
    pub name: String,
    /// Default SameSite attribute: lax, strict or none.
    pub same_site: String,
    /// Default maximum session age.
    pub expiration: Duration,
    /// Default idle time before a session ends.
    pub inactivity: Duration,
    /// Default lifetime of a remembered session (0 disables remember-me).
    pub remember_me: Duration,
    /// One entry per protected parent domain.
    pub cookies: Vec<SessionCookie>,
    /// Redis session store; memory is used when absent.
    pub redis: Option<Redis>,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            secret: Secret::default(),
            name: "authelia_session".into(),
            same_site: "lax".into(),
            expiration: Duration::from_secs(3600),
            inactivity: Duration::from_secs(300),
            remember_me: Duration::from_secs(30 * 24 * 3600),
            cookies: Vec::new(),
            redis: None,
        }
    }
}

/// `session.cookies[]`: unset values fall back to the `session` defaults.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SessionCookie {
    /// Parent domain the cookie is set on.
    pub domain: Option<String>,
    /// The portal URL for this domain.
    pub authelia_url: Option<AbsoluteUrl>,
    /// Where users land after login when no target was given.
    pub default_redirection_url: Option<AbsoluteUrl>,
    /// Cookie name.
    pub name: Option<String>,
    /// SameSite attribute.
    pub same_site: Option<String>,
    /// Maximum session age.
    pub expiration: Option<Duration>,
    /// Idle time before a session ends.
    pub inactivity: Option<Duration>,
    /// Lifetime of a remembered session.
    pub remember_me: Option<Duration>,
}

/// `session.redis`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Redis {
    /// Host name, IP or Unix socket path.
    pub host: Option<String>,
    /// TCP port.
    pub port: u16,
    /// ACL user.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Database number.
    pub database_index: u32,
    /// Connections to Redis. Each one pipelines every concurrent command, so one is the
    /// fastest on a local Redis; more only help a distant, high-latency one.
    pub maximum_active_connections: u32,
    /// Connections kept open.
    pub minimum_idle_connections: u32,
    /// Connect and command timeout.
    pub timeout: Duration,
    /// Retries of a failed command.
    pub max_retries: u32,
    /// TLS to Redis.
    pub tls: Option<Tls>,
    /// Sentinel.
    pub high_availability: Option<RedisHighAvailability>,
    /// Keep the sessions read in process memory, kept exact by Redis client tracking
    /// (RESP3, Redis 6 or later): a hot session costs no round trip (decision 0031).
    pub client_side_cache: bool,
}

impl Default for Redis {
    fn default() -> Self {
        Self {
            host: None,
            port: 6379,
            username: String::new(),
            password: Secret::default(),
            database_index: 0,
            maximum_active_connections: 1,
            minimum_idle_connections: 0,
            timeout: Duration::from_secs(5),
            max_retries: 0,
            tls: None,
            high_availability: None,
            client_side_cache: true,
        }
    }
}

/// `session.redis.high_availability`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisHighAvailability {
    /// Sentinel master name.
    pub sentinel_name: Option<String>,
    /// Sentinel ACL user.
    pub sentinel_username: String,
    /// Sentinel password.
    pub sentinel_password: Secret,
    /// Further sentinels besides `session.redis.host`.
    pub nodes: Vec<RedisNode>,
    /// Read from the closest replica.
    pub route_by_latency: bool,
    /// Read from a random replica.
    pub route_randomly: bool,
}

/// A sentinel node.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisNode {
    /// Host name or IP.
    pub host: Option<String>,
    /// Port (26379 when unset).
    pub port: Option<u16>,
}

/// TLS client settings shared by Redis, SQL and SMTP connections.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Tls {
    /// Name to verify the server certificate against.
    pub server_name: String,
    /// Do not verify the server certificate (testing only).
    pub skip_verify: bool,
    /// TLS1.2 or TLS1.3.
    pub minimum_version: String,
    /// TLS1.2 or TLS1.3.
    pub maximum_version: String,
    /// Client certificate chain (PEM).
    pub certificate_chain: String,
    /// Client key (PEM).
    pub private_key: Secret,
}

// ---------------------------------------------------------------- regulation

/// `regulation`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Regulation {
    /// What a ban applies to: user and/or ip.
    pub modes: Vec<String>,
    /// Failures within `find_time` that cause a ban (0 disables regulation).
    pub max_retries: u32,
    /// Window in which failures are counted.
    pub find_time: Duration,
    /// How long a ban lasts.
    pub ban_time: Duration,
}

impl Default for Regulation {
    fn default() -> Self {
        Self {
            modes: vec!["user".into()],
            max_retries: 3,
            find_time: Duration::from_secs(120),
            ban_time: Duration::from_secs(300),
        }
    }
}

// ---------------------------------------------------------------- storage

/// `storage`: exactly one of local, postgres, mysql.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Storage {
    /// Encrypts secret columns (at least 20 characters).
    pub encryption_key: Secret,
    /// SQLite.
    pub local: Option<LocalStorage>,
    /// PostgreSQL.
    pub postgres: Option<SqlStorage>,
    /// MySQL or MariaDB.
    pub mysql: Option<SqlStorage>,
}

/// `storage.local`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LocalStorage {
    /// SQLite database file.
    pub path: Option<String>,
}

/// `storage.postgres` / `storage.mysql`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SqlStorage {
    /// `tcp://host:port`.
    pub address: Option<String>,
    /// Database name.
    pub database: Option<String>,
    /// PostgreSQL schema.
    pub schema: Option<String>,
    /// User.
    pub username: Option<String>,
    /// Password.
    pub password: Secret,
    /// Connect timeout.
    pub timeout: Option<Duration>,
    /// TLS to the server.
    pub tls: Option<Tls>,
}

// ---------------------------------------------------------------- notifier

/// `notifier`: exactly one of filesystem, smtp.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Notifier {
    /// Skip the SMTP connection test at startup.
    pub disable_startup_check: bool,
    /// Directory with mail template overrides.
    pub template_path: String,
    /// Write messages to a file (development, tests).
    pub filesystem: Option<FilesystemNotifier>,
    /// Send mail.
    pub smtp: Option<SmtpNotifier>,
}

/// `notifier.filesystem`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FilesystemNotifier {
    /// File messages are appended to.
    pub filename: Option<String>,
}

/// `notifier.smtp`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct SmtpNotifier {
    /// `smtp://host:25`, `submission://host:587` (STARTTLS) or `submissions://host:465` (TLS).
    pub address: Option<String>,
    /// Connection timeout.
    pub timeout: Duration,
    /// SMTP user.
    pub username: String,
    /// SMTP password.
    pub password: Secret,
    /// From address, e.g. `Portcullis <auth@example.com>`.
    pub sender: Option<String>,
    /// Name sent in HELO/EHLO.
    pub identifier: String,
    /// Subject template; `{title}` is replaced.
    pub subject: String,
    /// Recipient of the startup check.
    pub startup_check_address: String,
    /// Allow plain-text SMTP to non-local servers.
    pub disable_require_tls: bool,
    /// Send plain-text mail only.
    pub disable_html_emails: bool,
    /// Do not attempt STARTTLS.
    pub disable_starttls: bool,
    /// TLS settings.
    pub tls: Option<Tls>,
}

impl Default for SmtpNotifier {
    fn default() -> Self {
        Self {
            address: None,
            timeout: Duration::from_secs(5),
            username: String::new(),
            password: Secret::default(),
            sender: None,
            identifier: "localhost".into(),
            subject: "[Portcullis] {title}".into(),
            startup_check_address: "test@portcullis.invalid".into(),
            disable_require_tls: false,
            disable_html_emails: false,
            disable_starttls: false,
            tls: None,
        }
    }
}

// ---------------------------------------------------------------- telemetry

/// `telemetry`: what operators watch the server through.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Telemetry {
    /// Prometheus metrics on a listener of their own (Authelia's keys).
    pub metrics: TelemetryMetrics,
    /// OpenTelemetry traces exported over OTLP (Portcullis-specific).
    pub traces: TelemetryTraces,
}

/// `telemetry.metrics`: Prometheus text format, Authelia's metric names.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetryMetrics {
    /// Serve metrics.
    pub enabled: bool,
    /// Where: `tcp://host:port/path`; the path is where metrics are answered (`/metrics`
    /// when the address has none). Default `tcp://:9959/metrics`, as Authelia.
    pub address: ListenAddress,
    /// Buffer sizes of the metrics listener (bytes).
    pub buffers: ServerBuffers,
    /// Timeouts of the metrics listener.
    pub timeouts: ServerTimeouts,
}

/// The metrics listener's port when `telemetry.metrics.address` names none.
pub const DEFAULT_METRICS_PORT: u16 = 9959;

impl Default for TelemetryMetrics {
    fn default() -> Self {
        Self {
            enabled: false,
            address: ListenAddress { port: DEFAULT_METRICS_PORT, base_path: "/metrics".into(), ..Default::default() },
            buffers: ServerBuffers::default(),
            timeouts: ServerTimeouts::default(),
        }
    }
}

/// `telemetry.traces`: spans exported to an OpenTelemetry collector over OTLP.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetryTraces {
    /// Export traces. Off, nothing is recorded and the request path does no tracing work.
    pub enabled: bool,
    /// The collector: `http://host:4317` for gRPC; for HTTP/protobuf the URL spans are
    /// posted to (`/v1/traces` is added to an endpoint with no path). Default: the local
    /// collector's port for the protocol.
    pub endpoint: Option<String>,
    /// `grpc` (default) or `http/protobuf`.
    pub protocol: String,
    /// Share of traces recorded, 0.0 to 1.0, for requests whose proxy did not decide
    /// (a `traceparent` from the proxy is followed: sampled there, sampled here).
    pub sampling_ratio: f64,
    /// Headers sent with every export (e.g. an API key for a hosted collector).
    pub headers: BTreeMap<String, String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

/// Collector endpoints used when `telemetry.traces.endpoint` is not set.
pub const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// See [`DEFAULT_OTLP_GRPC_ENDPOINT`].
pub const DEFAULT_OTLP_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";

impl Default for TelemetryTraces {
    fn default() -> Self {
        Self {
            enabled: false,
            endpoint: None,
            protocol: "grpc".into(),
            sampling_ratio: 1.0,
            headers: BTreeMap::new(),
            service_name: "portcullis".into(),
        }
    }
}

// ---------------------------------------------------------------- second factor

/// `totp`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Totp {
    /// Turn TOTP off.
    pub disable: bool,
    /// Issuer shown in authenticator apps.
    pub issuer: String,
    /// SHA1, SHA256 or SHA512.
    pub algorithm: String,
    /// 6 or 8.
    pub digits: u32,
    /// Seconds per code.
    pub period: u32,
    /// Periods accepted either side of now.
    pub skew: u32,
    /// Secret size in bytes (at least 20).
    pub secret_size: u32,
    /// Algorithms users may pick.
    pub allowed_algorithms: Vec<String>,
    /// Digit counts users may pick.
    pub allowed_digits: Vec<u32>,
    /// Periods users may pick.
    pub allowed_periods: Vec<u32>,
    /// Accept a code more than once within its period (not recommended).
    pub disable_reuse_security_policy: bool,
}

impl Default for Totp {
    fn default() -> Self {
        Self {
            disable: false,
            issuer: "Portcullis".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
            skew: 1,
            secret_size: 32,
            allowed_algorithms: vec!["SHA1".into()],
            allowed_digits: vec![6],
            allowed_periods: vec![30],
            disable_reuse_security_policy: false,
        }
    }
}

/// `webauthn`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WebAuthn {
    /// Turn security keys and passkeys off.
    pub disable: bool,
    /// Allow passwordless login with passkeys.
    pub enable_passkey_login: bool,
    /// Relying party name shown by authenticators.
    pub display_name: String,
    /// none, indirect or direct.
    pub attestation_conveyance_preference: String,
    /// Ceremony timeout.
    pub timeout: Duration,
    /// Authenticator selection.
    pub selection_criteria: WebAuthnSelectionCriteria,
    /// A passkey with user verification counts as two factors.
    pub experimental_enable_passkey_uv_two_factors: bool,
    /// After a passkey login that counts as one factor, the password may serve as the
    /// second (`/api/secondfactor/password`).
    pub experimental_enable_passkey_upgrade: bool,
}

impl Default for WebAuthn {
    fn default() -> Self {
        Self {
            disable: false,
            enable_passkey_login: false,
            display_name: "Portcullis".into(),
            attestation_conveyance_preference: "indirect".into(),
            timeout: Duration::from_secs(60),
            selection_criteria: WebAuthnSelectionCriteria::default(),
            experimental_enable_passkey_uv_two_factors: false,
            experimental_enable_passkey_upgrade: false,
        }
    }
}

/// `webauthn.selection_criteria`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct WebAuthnSelectionCriteria {
    /// platform, cross-platform or empty for either.
    pub attachment: String,
    /// discouraged, preferred or required.
    pub discoverability: String,
    /// discouraged, preferred or required.
    pub user_verification: String,
}

impl Default for WebAuthnSelectionCriteria {
    fn default() -> Self {
        Self { attachment: String::new(), discoverability: "preferred".into(), user_verification: "required".into() }
    }
}

/// `email_otp`: a code sent to the user's address completes the second factor. Off by
/// default: a mailbox is a weaker factor than an authenticator.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct EmailOtp {
    /// Offer the `email` second-factor method.
    pub enable: bool,
    /// How long a code is valid.
    pub code_lifespan: Duration,
    /// Length of the code.
    pub characters: u32,
}

impl Default for EmailOtp {
    fn default() -> Self {
        Self { enable: false, code_lifespan: Duration::from_secs(300), characters: 8 }
    }
}

// ---------------------------------------------------------------- identity validation

/// `identity_validation`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IdentityValidation {
    /// Password reset links.
    pub reset_password: ResetPasswordValidation,
    /// One-time codes that elevate a session for sensitive changes.
    pub elevated_session: ElevatedSession,
}

/// `identity_validation.reset_password`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ResetPasswordValidation {
    /// How long a reset link is valid.
    pub jwt_lifespan: Duration,
    /// HS256, HS384 or HS512.
    pub jwt_algorithm: String,
    /// Signing key for reset links.
    pub jwt_secret: Secret,
}

impl Default for ResetPasswordValidation {
    fn default() -> Self {
        Self { jwt_lifespan: Duration::from_secs(300), jwt_algorithm: "HS256".into(), jwt_secret: Secret::default() }
    }
}

/// `identity_validation.elevated_session`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ElevatedSession {
    /// How long an emailed code is valid.
    pub code_lifespan: Duration,
    /// How long the elevation lasts.
    pub elevation_lifespan: Duration,
    /// Length of the code.
    pub characters: u32,
    /// Require a 2FA session before elevating.
    pub require_second_factor: bool,
    /// A 2FA session counts as elevated without a code.
    pub skip_second_factor: bool,
}

impl Default for ElevatedSession {
    fn default() -> Self {
        Self {
            code_lifespan: Duration::from_secs(300),
            elevation_lifespan: Duration::from_secs(600),
            characters: 8,
            require_second_factor: false,
            skip_second_factor: false,
        }
    }
}

// ---------------------------------------------------------------- definitions and access control

/// `definitions`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Definitions {
    /// Named network lists usable in rules.
    pub network: BTreeMap<String, OneOrMany<String>>,
}

/// `access_control`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AccessControl {
    /// Policy when no rule matches (deny when unset).
    pub default_policy: Option<Policy>,
    /// Named networks (Authelia's older form of `definitions.network`).
    pub networks: Vec<NamedNetwork>,
    /// Rules, first match wins.
    pub rules: Vec<AccessRule>,
    /// Accept request paths with an encoded slash (`%2F`), judging them both with `%2F`
    /// as a separator and as part of its segment (the stricter decision applies); when
    /// false, the authorization endpoints refuse them with 400. Portcullis-specific.
    /// Default: false.
    pub allow_encoded_slashes: bool,
}

/// `access_control.networks[]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NamedNetwork {
    /// Name used in rules.
    pub name: Option<String>,
    /// CIDRs or IPs.
    pub networks: OneOrMany<String>,
}

/// `access_control.rules[]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AccessRule {
    /// Domains, `*.example.com` wildcards, `{user}`/`{group}` placeholders.
    pub domain: OneOrMany<String>,
    /// Domain regexes, with optional `User`/`Group` named groups.
    pub domain_regex: OneOrMany<String>,
    /// bypass, one_factor, two_factor or deny.
    pub policy: Option<Policy>,
    /// `user:`, `group:` or `oauth2:client:` entries; inner lists AND, outer list OR.
    pub subject: OneOrMany<OneOrMany<String>>,
    /// CIDRs, IPs or names of defined networks.
    pub networks: OneOrMany<String>,
    /// Regexes matched against path and query.
    pub resources: OneOrMany<String>,
    /// Query conditions: inner lists AND, outer list OR.
    pub query: Vec<Vec<QueryCondition>>,
    /// HTTP methods.
    pub methods: OneOrMany<String>,
}

/// One query-string condition of a rule.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct QueryCondition {
    /// equal, not equal, present, absent, pattern or not pattern.
    pub operator: Option<String>,
    /// Query parameter name.
    pub key: Option<String>,
    /// Value or pattern (for equal and pattern operators).
    pub value: Option<serde_json::Value>,
}

impl Session {
    /// The cookie domain `host` (with or without a port) belongs to, if any.
    pub fn cookie_for_host(&self, host: &str) -> Option<&SessionCookie> {
        let host = strip_port(host).to_ascii_lowercase();
        let host = host.trim_end_matches('.');
        self.cookies.iter().find(|c| {
            c.domain.as_deref().is_some_and(|d| {
                let d = d.to_ascii_lowercase();
                host == d || host.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.'))
            })
        })
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl AccessControl {
    /// True when some rule (or the default policy) asks for two factors, which is when
    /// Authelia offers second-factor methods at all.
    pub fn second_factor_required(&self) -> bool {
        self.default_policy == Some(Policy::TwoFactor) || self.rules.iter().any(|r| r.policy == Some(Policy::TwoFactor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(domain: &str) -> SessionCookie {
        SessionCookie { domain: Some(domain.into()), ..Default::default() }
    }

    #[test]
    fn cookie_domain_lookup() {
        let session = Session { cookies: vec![cookie("example.com"), cookie("other.org")], ..Default::default() };
        let domain = |h| session.cookie_for_host(h).and_then(|c| c.domain.as_deref());
        assert_eq!(domain("auth.example.com"), Some("example.com"));
        assert_eq!(domain("EXAMPLE.com:8443"), Some("example.com"));
        assert_eq!(domain("a.b.other.org."), Some("other.org"));
        assert_eq!(domain("badexample.com"), None);
        assert_eq!(domain("example.com.evil.net"), None);
        assert_eq!(domain(""), None);
    }
}
