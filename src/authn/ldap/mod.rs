//! Users in an LDAP directory (`authentication_backend.ldap`), with Authelia's keys and
//! per-implementation defaults.
//!
//! - Searches run as the service account on pooled connections; a connection that fails
//!   is dropped and the operation tried again on a fresh one (`pooling.retries`), so a
//!   restarted server is used again without restarting Portcullis.
//! - A password is checked by binding as the user on a connection of its own (never by
//!   comparing hashes). An empty password is refused before any bind: to a directory it
//!   would be an unauthenticated bind, which succeeds.
//! - What a user typed only ever reaches a filter escaped (RFC 4515), in one pass, so it
//!   cannot add filter clauses or placeholders. It never goes into a DN: DNs come from the
//!   directory, and the first RDN of a member-of DN is read per RFC 4514 before it is
//!   escaped into the groups filter.
//! - Passwords are set with the password-modify extended operation when the server offers
//!   it (its root DSE is read once), as `unicodePwd` for Active Directory, else by
//!   replacing `userPassword`.
//! - Users looked up are remembered for `cache_lifespan`, so the proxy's Basic checks and
//!   the portal's pages rarely wait on the directory; logins always search afresh. When
//!   the directory is down a remembered user is still answered (sessions keep working)
//!   while logins fail with 503.

pub mod filter;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};

use super::users::UsersError;
use super::users_file::User;
use crate::config::schema::LdapBackend;
use filter::{escape_filter_value, expand, first_rdn, time_values};

/// The password-modify extended operation (RFC 3062).
const PASSWORD_MODIFY: &str = "1.3.6.1.4.1.4203.1.11.1";

/// Result codes that mean "these credentials do not log in" rather than a fault:
/// constraintViolation (a locked account on some servers), noSuchObject,
/// inappropriateAuthentication, invalidCredentials, insufficientAccessRights,
/// unwillingToPerform.
const REFUSED_BIND: &[u32] = &[19, 32, 48, 49, 50, 53];

/// The LDAP address as the client library takes it: `ldapi:///path` becomes
/// `ldapi://%2Fpath` (the socket path as the host).
pub fn connection_url(address: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(address.trim()).map_err(|e| format!("invalid address '{address}': {e}"))?;
    match url.scheme() {
        "ldap" | "ldaps" => {
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("address '{address}' has no host"));
            }
            if url.path() != "/" && !url.path().is_empty() {
                return Err(format!("address '{address}' must not have a path"));
            }
            Ok(url)
        }
        "ldapi" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Ok(url);
            }
            let path = percent_encoding::percent_decode_str(url.path()).decode_utf8_lossy().to_string();
            if path.is_empty() || path == "/" {
                return Err(format!("address '{address}' names no socket: use ldapi:///path/to/socket"));
            }
            let encoded = percent_encoding::utf8_percent_encode(&path, percent_encoding::NON_ALPHANUMERIC);
            url::Url::parse(&format!("ldapi://{encoded}")).map_err(|e| format!("invalid address '{address}': {e}"))
        }
        other => Err(format!("scheme '{other}' is not allowed; use 'ldap', 'ldaps' or 'ldapi'")),
    }
}

/// What the server offers, from its root DSE.
#[derive(Clone, Copy, Debug, Default)]
struct Features {
    password_modify: bool,
}

/// A user found in the directory.
#[derive(Clone)]
struct Found {
    dn: String,
    user: Arc<User>,
    /// The server a referral led to, when it is not the configured one.
    server: Option<url::Url>,
}

struct Cached {
    found: Found,
    at: Instant,
}

/// Why an operation on a connection failed.
enum Fault {
    /// The connection broke or timed out: try again on a fresh one.
    Connection(String),
    /// The server answered with an error.
    Server(String),
    /// The server refused a new password (policy, constraint).
    Refused(String),
}

impl From<LdapError> for Fault {
    fn from(e: LdapError) -> Self {
        match e {
            LdapError::LdapResult { result } => Self::Server(format!("{} (result code {})", result.text, result.rc)),
            other => Self::Connection(other.to_string()),
        }
    }
}

/// The LDAP users backend.
pub struct LdapUsers {
    config: LdapBackend,
    url: url::Url,
    settings: LdapConnSettings,
    users_base: String,
    groups_base: String,
    users_filter: String,
    groups_filter: String,
    user_attributes: Vec<String>,
    pool: Mutex<Vec<Ldap>>,
    features: Mutex<Option<Features>>,
    cache: RwLock<HashMap<String, Cached>>,
    /// Bumped at every password set through Portcullis: part of each user's stand-in
    /// password hash, so remembered Basic credentials stop counting.
    generation: AtomicU64,
}

impl LdapUsers {
    /// The backend `config` describes (TLS trusting `certificates_directory` too). Opens no
    /// connection: the first search does.
    pub fn new(config: &LdapBackend, certificates_directory: Option<&std::path::Path>) -> Result<Self, String> {
        const KEY: &str = "authentication_backend.ldap";
        let config = config.effective();
        let url =
            connection_url(config.address.as_deref().unwrap_or_default()).map_err(|e| format!("{KEY}.address: {e}"))?;
        let mut settings = LdapConnSettings::new().set_conn_timeout(config.timeout.get());
        let tls_used = url.scheme() == "ldaps" || config.start_tls;
        if tls_used {
            let tls = config.tls.clone().unwrap_or_default();
            let anchors = crate::tls::trust_anchors(certificates_directory)?;
            let client = crate::tls::client_config_named(&format!("{KEY}.tls"), &tls, &anchors)?;
            settings = settings.set_config(Arc::new(client)).set_starttls(config.start_tls);
        }
        let join = |prefix: &str| {
            if prefix.trim().is_empty() { config.base_dn.clone() } else { format!("{prefix},{}", config.base_dn) }
        };
        let a = &config.attributes;
        let attribute_values = HashMap::from([
            ("username_attribute", a.username.clone()),
            ("mail_attribute", a.mail.clone()),
            ("display_name_attribute", a.display_name.clone()),
            ("member_of_attribute", a.member_of.clone()),
            ("distinguished_name_attribute", a.distinguished_name.clone()),
        ]);
        let user_attributes = [&a.username, &a.display_name, &a.mail, &a.member_of, &a.distinguished_name]
            .into_iter()
            .filter(|name| !name.is_empty())
            .cloned()
            .collect();
        Ok(Self {
            users_base: join(&config.additional_users_dn),
            groups_base: join(&config.additional_groups_dn),
            users_filter: expand(&config.users_filter, &attribute_values),
            groups_filter: expand(&config.groups_filter, &attribute_values),
            user_attributes,
            url,
            settings,
            pool: Mutex::new(Vec::new()),
            features: Mutex::new(None),
            cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            config,
        })
    }

    fn is_active_directory(&self) -> bool {
        self.config.implementation == "activedirectory"
    }

    /// Connects, binds as the service account and reads the server's features, logging
    /// the outcome: run once at startup so a misconfiguration shows at once (the server
    /// starts either way, and logins wait for the directory).
    pub async fn probe(&self) {
        match self.service().await {
            Ok((ldap, features)) => {
                self.give_back(ldap);
                tracing::info!(address = %self.url, password_modify = features.password_modify, "LDAP directory reachable");
            }
            Err(e) => tracing::error!(address = %self.url, error = %e, "LDAP directory not usable at startup"),
        }
    }

    /// Whether the service account can bind now (the readiness check).
    pub async fn ping(&self) -> bool {
        match self.service().await {
            Ok((ldap, _)) => {
                self.give_back(ldap);
                true
            }
            Err(_) => false,
        }
    }

    /// The user `login` names (a username, or whatever else the users filter matches, such
    /// as an address), searched afresh.
    pub async fn find_login(&self, login: &str) -> Result<Option<Arc<User>>, UsersError> {
        Ok(self.lookup(login).await?.map(|found| found.user))
    }

    /// The user named `username`: remembered for `cache_lifespan`, else searched; when the
    /// directory cannot be reached, the last one seen.
    pub async fn get(&self, username: &str) -> Result<Option<Arc<User>>, UsersError> {
        let key = username.to_lowercase();
        let lifespan = self.config.cache_lifespan.get();
        let remembered = self.cached(&key);
        if let Some((found, at)) = &remembered
            && at.elapsed() < lifespan
        {
            return Ok(Some(found.user.clone()));
        }
        match self.lookup(username).await {
            Ok(found) => Ok(found.map(|f| f.user).filter(|u| u.username.to_lowercase() == key)),
            Err(e) => match remembered.map(|(found, _)| found.user) {
                Some(user) => {
                    tracing::warn!(username = %user.username, error = %e, "LDAP unavailable: using the user as last seen");
                    Ok(Some(user))
                }
                None => Err(e),
            },
        }
    }

    fn cached(&self, key: &str) -> Option<(Found, Instant)> {
        let cache = self.cache.read().ok()?;
        cache.get(key).map(|c| (c.found.clone(), c.at))
    }

    fn remember(&self, found: &Found) {
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(found.user.username.to_lowercase(), Cached { found: found.clone(), at: Instant::now() });
        }
    }

    /// Whether `password` binds as `user` (found by a search just before).
    pub async fn check_password(&self, user: &User, password: &str) -> Result<bool, UsersError> {
        if password.is_empty() {
            return Ok(false);
        }
        let found = match self.cached(&user.username.to_lowercase()) {
            Some((found, _)) => found,
            None => match self.lookup(&user.username).await? {
                Some(found) => found,
                None => return Ok(false),
            },
        };
        let server = found.server.as_ref().unwrap_or(&self.url);
        let mut ldap = self.connect(server).await.map_err(|e| self.unavailable("connect", e))?;
        let result = self.timed(ldap.simple_bind(&found.dn, password)).await;
        let _ = ldap.unbind().await;
        match result {
            Ok(result) if result.rc == 0 => Ok(true),
            Ok(result) if REFUSED_BIND.contains(&result.rc) => Ok(false),
            Ok(result) => Err(self.unavailable(
                "bind as the user",
                Fault::Server(format!("{} (result code {})", result.text, result.rc)),
            )),
            Err(e) => Err(self.unavailable("bind as the user", e)),
        }
    }

    /// Forgets what the cache holds of `username` (changed elsewhere, e.g. on another
    /// replica), so the next lookup asks the directory.
    pub fn forget(&self, username: &str) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&username.to_lowercase());
        }
    }

    /// Forgets every user the cache holds.
    pub fn forget_all(&self) {
        if let Ok(mut cache) = self.cache.write() {
            cache.clear();
        }
    }

    /// Sets `username`'s password in the directory.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), UsersError> {
        let found = self.lookup(username).await?.ok_or_else(|| UsersError::UnknownUser(username.to_string()))?;
        let mut tries = 0;
        loop {
            let (mut ldap, features) = self.service().await?;
            let result = match &found.server {
                None => self.write_password(&mut ldap, features, &found.dn, password).await,
                // A user a referral led to: on their own server, as the service account.
                Some(server) => {
                    let elsewhere = async {
                        let mut there = self.connect(server).await?;
                        self.bind_service(&mut there).await?;
                        self.write_password(&mut there, features, &found.dn, password).await
                    };
                    elsewhere.await
                }
            };
            match self.settle(ldap, result, &mut tries, "set the password") {
                Settled::Done(result) => {
                    result?;
                    break;
                }
                Settled::Retry => {}
            }
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&found.user.username.to_lowercase());
        }
        tracing::info!(username = %found.user.username, "password set in the LDAP directory");
        Ok(())
    }

    async fn write_password(&self, ldap: &mut Ldap, features: Features, dn: &str, password: &str) -> Result<(), Fault> {
        let refused = |e: LdapError| match e {
            LdapError::LdapResult { result } if matches!(result.rc, 19 | 21 | 53) => Fault::Refused(result.text),
            other => Fault::from(other),
        };
        if self.is_active_directory() {
            // unicodePwd: the password in double quotes, UTF-16LE.
            let quoted: Vec<u8> = format!("\"{password}\"").encode_utf16().flat_map(u16::to_le_bytes).collect();
            let change = vec![Mod::Replace(b"unicodePwd".to_vec(), HashSet::from([quoted]))];
            self.timed(ldap.modify(dn, change)).await?.success().map_err(refused)?;
        } else if features.password_modify {
            let exop = PasswordModify { user_id: Some(dn), old_pass: None, new_pass: Some(password) };
            self.timed(ldap.extended(exop)).await?.success().map_err(refused)?;
        } else {
            let change = vec![Mod::Replace("userPassword", HashSet::from([password]))];
            self.timed(ldap.modify(dn, change)).await?.success().map_err(refused)?;
        }
        Ok(())
    }

    /// Users for the admin API's listings: everyone the users filter matches, by username.
    pub async fn list(&self) -> Result<Vec<Arc<User>>, UsersError> {
        let mut tries = 0;
        let found = loop {
            let (mut ldap, _) = self.service().await?;
            let result = self.search_users(&mut ldap, "*", false).await;
            match self.settle(ldap, result, &mut tries, "list users") {
                Settled::Done(found) => break found?,
                Settled::Retry => {}
            }
        };
        let mut users: Vec<Arc<User>> = found.into_iter().map(|f| f.user).collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(users)
    }

    /// Searches the user `input` names, with their groups; remembers them.
    async fn lookup(&self, input: &str) -> Result<Option<Found>, UsersError> {
        let mut tries = 0;
        let found = loop {
            let (mut ldap, _) = self.service().await?;
            let result = self.search_users(&mut ldap, &escape_filter_value(input), true).await;
            match self.settle(ldap, result, &mut tries, "search the user") {
                Settled::Done(found) => break found?,
                Settled::Retry => {}
            }
        };
        match found.len() {
            0 => Ok(None),
            1 => {
                let found = found.into_iter().next();
                if let Some(found) = &found {
                    self.remember(found);
                }
                Ok(found)
            }
            n => {
                tracing::error!(count = n, "LDAP users_filter matched several users for one login: refused");
                Ok(None)
            }
        }
    }

    /// The users the users filter matches for `input` (already escaped, or `*` for all),
    /// each with their groups.
    async fn search_users(&self, ldap: &mut Ldap, input: &str, follow: bool) -> Result<Vec<Found>, Fault> {
        let mut values: HashMap<&str, String> = time_values(crate::clock::now()).into_iter().collect();
        values.insert("input", input.to_string());
        let filter = expand(&self.users_filter, &values);
        let (entries, referrals) = self.search(ldap, &self.users_base, &filter, &self.user_attributes).await?;
        let mut users = Vec::new();
        for entry in entries {
            if let Some((dn, user)) = self.user_of(&entry) {
                users.push((dn, user, entry, None));
            }
        }
        if follow && self.config.permit_referrals && users.is_empty() {
            for referral in referrals {
                let (server, entries) = self.search_referral(&referral, &filter).await?;
                for entry in entries {
                    if let Some((dn, user)) = self.user_of(&entry) {
                        users.push((dn, user, entry, server.clone()));
                    }
                }
            }
        }
        let mut found = Vec::new();
        for (dn, mut user, entry, server) in users {
            let member_of = attribute(&entry, &self.config.attributes.member_of);
            user.groups = self.groups(ldap, &dn, &user.username, input, &member_of).await?;
            found.push(Found { dn, user: Arc::new(user), server });
        }
        Ok(found)
    }

    /// Follows one referral of a user search: the same filter, on the server and base the
    /// referral names, as the service account. The server and the entries found there.
    async fn search_referral(
        &self,
        referral: &str,
        filter: &str,
    ) -> Result<(Option<url::Url>, Vec<SearchEntry>), Fault> {
        let url = url::Url::parse(referral).map_err(|e| Fault::Server(format!("bad referral '{referral}': {e}")))?;
        if !matches!(url.scheme(), "ldap" | "ldaps") {
            return Ok((None, Vec::new()));
        }
        let base =
            percent_encoding::percent_decode_str(url.path().trim_start_matches('/')).decode_utf8_lossy().to_string();
        let base = if base.is_empty() { self.users_base.clone() } else { base };
        let mut target = url.clone();
        target.set_path("");
        target.set_query(None);
        let mut ldap = self.connect(&target).await?;
        self.bind_service(&mut ldap).await?;
        let (entries, _) = self.search(&mut ldap, &base, filter, &self.user_attributes).await?;
        let _ = ldap.unbind().await;
        Ok((Some(target), entries))
    }

    fn user_of(&self, entry: &SearchEntry) -> Option<(String, User)> {
        let a = &self.config.attributes;
        let username = attribute(entry, &a.username).into_iter().next()?;
        let dn = match a.distinguished_name.as_str() {
            "" => entry.dn.clone(),
            name => attribute(entry, name).into_iter().next().unwrap_or_else(|| entry.dn.clone()),
        };
        let display_name = attribute(entry, &a.display_name).into_iter().next().unwrap_or_else(|| username.clone());
        let user = User {
            password_hash: format!("ldap:{}", self.generation.load(Ordering::Relaxed)),
            display_name,
            emails: attribute(entry, &a.mail),
            groups: Vec::new(),
            disabled: false,
            username,
        };
        Some((dn, user))
    }

    /// The names of the groups of the user at `dn`, per `group_search_mode`.
    async fn groups(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        username: &str,
        input: &str,
        member_of: &[String],
    ) -> Result<Vec<String>, Fault> {
        let memberof_mode = self.config.group_search_mode == "memberof";
        if memberof_mode && member_of.is_empty() {
            return Ok(Vec::new());
        }
        let mut values: HashMap<&str, String> = time_values(crate::clock::now()).into_iter().collect();
        values.insert("dn", escape_filter_value(dn));
        values.insert("username", escape_filter_value(username));
        values.insert("input", input.to_string());
        if memberof_mode {
            let rdns = member_of
                .iter()
                .filter_map(|group| first_rdn(group))
                .map(|(kind, value)| format!("({kind}={})", escape_filter_value(&value)))
                .collect::<String>();
            let dns = member_of
                .iter()
                .map(|group| format!("({}={})", self.config.attributes.distinguished_name, escape_filter_value(group)))
                .collect::<String>();
            values.insert("memberof:rdn", rdns);
            values.insert("memberof:dn", dns);
        }
        let filter = expand(&self.groups_filter, &values);
        let name = &self.config.attributes.group_name;
        let (entries, _) = self.search(ldap, &self.groups_base, &filter, std::slice::from_ref(name)).await?;
        let member_of: HashSet<String> = member_of.iter().map(|d| d.to_lowercase()).collect();
        let mut groups = Vec::new();
        for entry in entries {
            if memberof_mode && !member_of.contains(&entry.dn.to_lowercase()) {
                continue;
            }
            for group in attribute(&entry, name).into_iter().take(1) {
                if !groups.contains(&group) {
                    groups.push(group);
                }
            }
        }
        Ok(groups)
    }

    /// A subtree search: the entries and the referral URLs.
    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attributes: &[String],
    ) -> Result<(Vec<SearchEntry>, Vec<String>), Fault> {
        let result = self.timed(ldap.search(base, Scope::Subtree, filter, attributes.to_vec())).await?;
        let (entries, outcome) = (result.0, result.1);
        // noSuchObject: the base is not there (yet); referral: handled below.
        if !matches!(outcome.rc, 0 | 10 | 32) {
            return Err(Fault::Server(format!("{} (result code {})", outcome.text, outcome.rc)));
        }
        let mut referrals = outcome.refs.clone();
        let mut found = Vec::new();
        for entry in entries {
            if entry.is_ref() {
                referrals.extend(ldap3::parse_refs(entry.0));
            } else {
                found.push(SearchEntry::construct(entry));
            }
        }
        Ok((found, referrals))
    }

    async fn timed<T>(&self, op: impl Future<Output = Result<T, LdapError>>) -> Result<T, Fault> {
        match tokio::time::timeout(self.config.timeout.get(), op).await {
            Ok(result) => result.map_err(Fault::from),
            Err(_) => Err(Fault::Connection(format!("no answer within {:?}", self.config.timeout.get()))),
        }
    }

    async fn connect(&self, url: &url::Url) -> Result<Ldap, Fault> {
        let (conn, ldap) = LdapConnAsync::from_url_with_settings(self.settings.clone(), url)
            .await
            .map_err(|e| Fault::Connection(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        Ok(ldap)
    }

    async fn bind_service(&self, ldap: &mut Ldap) -> Result<(), Fault> {
        if self.config.permit_unauthenticated_bind {
            return Ok(());
        }
        let result = self.timed(ldap.simple_bind(&self.config.user, self.config.password.expose())).await?;
        if result.rc != 0 {
            return Err(Fault::Server(format!(
                "the service account's bind was refused: {} (result code {})",
                result.text, result.rc
            )));
        }
        Ok(())
    }

    /// A connection bound as the service account (pooled, or new) and the server's features.
    async fn service(&self) -> Result<(Ldap, Features), UsersError> {
        let pooled = self.pool.lock().ok().and_then(|mut pool| pool.pop());
        let open = pooled.and_then(|mut ldap| (!ldap.is_closed()).then_some(ldap));
        let mut ldap = match open {
            Some(ldap) => ldap,
            None => {
                let connect = async {
                    let mut ldap = self.connect(&self.url).await?;
                    self.bind_service(&mut ldap).await?;
                    Ok::<_, Fault>(ldap)
                };
                let wait = self.config.pooling.timeout.get();
                let connected = match tokio::time::timeout(wait, connect).await {
                    Ok(connected) => connected,
                    Err(_) => Err(Fault::Connection(format!("no connection within {wait:?}"))),
                };
                connected.map_err(|e| self.unavailable("connect", e))?
            }
        };
        let features = self.features.lock().ok().and_then(|f| *f);
        let features = match features {
            Some(features) => features,
            None => {
                let features = self.detect(&mut ldap).await?;
                if let Ok(mut slot) = self.features.lock() {
                    *slot = Some(features);
                }
                features
            }
        };
        Ok((ldap, features))
    }

    /// Reads the root DSE's supported extensions.
    async fn detect(&self, ldap: &mut Ldap) -> Result<Features, UsersError> {
        let attributes = vec!["supportedExtension".to_string()];
        let result = self.timed(ldap.search("", Scope::Base, "(objectClass=*)", attributes)).await;
        let entries = match result {
            Ok(result) if result.1.rc == 0 => result.0,
            Ok(result) => {
                return self.detection_failed(format!("{} (result code {})", result.1.text, result.1.rc));
            }
            Err(Fault::Connection(e)) => return Err(self.unavailable("read the root DSE", Fault::Connection(e))),
            Err(Fault::Server(e) | Fault::Refused(e)) => return self.detection_failed(e),
        };
        let extensions: Vec<String> =
            entries.into_iter().map(SearchEntry::construct).flat_map(|e| attribute(&e, "supportedExtension")).collect();
        Ok(Features { password_modify: extensions.iter().any(|oid| oid == PASSWORD_MODIFY) })
    }

    fn detection_failed(&self, why: String) -> Result<Features, UsersError> {
        if self.config.permit_feature_detection_failure {
            tracing::warn!(error = %why, "cannot read the LDAP server's features; going on without them");
            Ok(Features::default())
        } else {
            tracing::error!(error = %why, "cannot read the LDAP server's features (root DSE); \
                            set authentication_backend.ldap.permit_feature_detection_failure to go on without them");
            Err(UsersError::Unavailable(format!("LDAP feature detection failed: {why}")))
        }
    }

    /// Returns a healthy connection to the pool and decides whether to try again.
    fn settle<T>(&self, ldap: Ldap, result: Result<T, Fault>, tries: &mut u32, what: &str) -> Settled<T> {
        match result {
            Ok(value) => {
                self.give_back(ldap);
                Settled::Done(Ok(value))
            }
            Err(Fault::Connection(e)) if *tries < self.config.pooling.retries => {
                *tries += 1;
                // After a server restart every pooled connection is dead: start afresh.
                if let Ok(mut pool) = self.pool.lock() {
                    pool.clear();
                }
                tracing::debug!(error = %e, "LDAP connection failed; trying a fresh one");
                Settled::Retry
            }
            Err(Fault::Refused(why)) => {
                self.give_back(ldap);
                Settled::Done(Err(UsersError::Refused(why)))
            }
            Err(e @ Fault::Server(_)) => {
                self.give_back(ldap);
                Settled::Done(Err(self.unavailable(what, e)))
            }
            Err(e) => {
                if let Ok(mut pool) = self.pool.lock() {
                    pool.clear();
                }
                Settled::Done(Err(self.unavailable(what, e)))
            }
        }
    }

    fn give_back(&self, ldap: Ldap) {
        if !self.config.pooling.enable {
            return;
        }
        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < self.config.pooling.count as usize
        {
            pool.push(ldap);
        }
    }

    /// Logs a fault of the directory once, clearly, and turns it into [`UsersError::Unavailable`].
    fn unavailable(&self, what: &str, fault: Fault) -> UsersError {
        let why = match fault {
            Fault::Connection(e) | Fault::Server(e) | Fault::Refused(e) => e,
        };
        tracing::error!(address = %self.url, error = %why, "LDAP server unavailable: cannot {what}; logins fail until it is back");
        UsersError::Unavailable(format!("LDAP: cannot {what}: {why}"))
    }
}

enum Settled<T> {
    Done(Result<T, UsersError>),
    Retry,
}

/// The values of `entry`'s attribute `name` (attribute names match ignoring case).
fn attribute(entry: &SearchEntry, name: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    entry
        .attrs
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .flat_map(|(_, values)| values.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names_match_ignoring_case() {
        let entry = SearchEntry {
            dn: "uid=john,ou=people,dc=example,dc=com".into(),
            attrs: HashMap::from([
                ("memberof".to_string(), vec!["cn=a,dc=x".to_string()]),
                ("MAIL".to_string(), vec!["j@example.com".to_string(), "john@example.com".to_string()]),
            ]),
            bin_attrs: HashMap::new(),
        };
        assert_eq!(attribute(&entry, "memberOf"), ["cn=a,dc=x"]);
        assert_eq!(attribute(&entry, "mail"), ["j@example.com", "john@example.com"]);
        assert!(attribute(&entry, "").is_empty() && attribute(&entry, "cn").is_empty());
    }

    #[test]
    fn addresses() {
        assert_eq!(connection_url("ldap://127.0.0.1:389").unwrap().as_str(), "ldap://127.0.0.1:389");
        assert!(connection_url("ldaps://ldap.example.com").is_ok());
        assert_eq!(connection_url("ldapi:///run/slapd/ldapi").unwrap().as_str(), "ldapi://%2Frun%2Fslapd%2Fldapi");
        assert!(connection_url("ldapi:///").is_err());
        assert!(connection_url("http://x").is_err());
        assert!(connection_url("ldap://").is_err());
        assert!(connection_url("ldap://host/dc=x").is_err());
    }
}
