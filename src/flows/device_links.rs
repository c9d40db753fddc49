//! Device-addition links (seed 004): a signed-in user, or an administrator for someone
//! else, makes a single-use link that lives [`LIFETIME_SECS`]; opened on another device,
//! which needs no session, it lets that device register a passkey (a discoverable
//! credential) for the account. The device then signs in passwordlessly with the usual
//! passkey login; the link itself signs nobody in.
//!
//! A link's token is `pdl_` and 32 base62 characters (about 190 random bits). Storage
//! keeps only its keyed hash; a value of any other shape is refused before any query.
//! Between the registration's two requests the ceremony's state waits in a sealed cookie
//! together with the token's hash, so it finishes only with the link it began with. The
//! link is used by a conditional update when the answer has verified: of concurrent
//! finishes exactly one stores a credential. Creating and using a link are audited, and
//! the owner is told by mail when the new passkey is stored.

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use webauthn_rs::prelude::{RegisterPublicKeyCredential, Uuid};

use super::admin::require_admin;
use super::audit::{self, Event, Outcome};
use super::login::ceremony_failed;
use super::sealed_cookie::SealedCookie;
use super::security_keys::{NewCredential, passkey_of, store_registered, valid_description};
use super::{Caller, Error, Pending, Result};
use crate::authn::users_file::User;
use crate::clock::now;
use crate::server::App;
use crate::session::{AuthLevel, CookieSettings};
use crate::storage::{DeviceLinkRecord, Storage, StorageError};

/// What every token starts with ("Portcullis Device Link").
pub const TOKEN_PREFIX: &str = "pdl_";
/// Random base62 characters after the prefix.
const TOKEN_RANDOM_LEN: usize = 32;
/// How long a link is valid, in seconds.
pub const LIFETIME_SECS: i64 = 15 * 60;
/// Most unused, unexpired links one account may have.
pub const MAX_OPEN_PER_USER: i64 = 5;
/// The keyed-hash purpose of tokens (separates them from other hashed secrets).
const HASH_PURPOSE: &str = "device-link";
/// The name of a passkey added without one.
const DEFAULT_DESCRIPTION: &str = "Passkey added with a link";

/// The registration's state between its two requests.
pub const DEVICE_LINK_CEREMONY: SealedCookie = SealedCookie {
    name: "portcullis_device_link",
    purpose: "device-link-v1",
    lifetime_secs: 300,
    same_site: cookie::SameSite::Strict,
};

/// A link just created: the only time its token is seen.
#[derive(Clone, Debug)]
pub struct CreatedLink {
    /// Where the other device goes.
    pub url: String,
    /// The token (the last segment of the URL).
    pub token: String,
    /// When it stops working (Unix seconds).
    pub expires_at: i64,
}

/// What an open link says about itself.
#[derive(Clone, Debug)]
pub struct LinkView {
    /// The account it adds a passkey to.
    pub username: String,
    /// Its display name.
    pub display_name: String,
    /// When the link stops working (Unix seconds).
    pub expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct CeremonyState {
    /// The keyed hash of the link's token.
    token_hash: String,
    /// The WebAuthn library's registration state.
    state: String,
}

/// Whether `token` has a link token's shape: the prefix, then exactly 32 ASCII letters and
/// digits. Says nothing of whether such a link exists.
pub fn is_well_formed(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|body| body.len() == TOKEN_RANDOM_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn generate() -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(TOKEN_RANDOM_LEN).map(char::from).collect();
    format!("{TOKEN_PREFIX}{random}")
}

/// The keyed hash a link's token is stored and found by.
pub fn token_hash(storage: &Storage, token: &str) -> String {
    storage.cipher().keyed_hash(HASH_PURPOSE, token)
}

fn hash_of(app: &App, token: &str) -> String {
    token_hash(&app.services.storage, token)
}

/// Where a link's token is opened: `{portal_url}/auth/{token}` on the portal of the
/// caller's cookie domain. The one place that knows the link's address.
pub fn link_url(app: &App, settings: &CookieSettings, token: &str) -> String {
    match app.host_mode.auth_origin() {
        // A dedicated auth host serves the link at its root.
        Some(origin) => format!("{origin}/{token}"),
        None => format!("{}/auth/{token}", settings.portal_url.as_str().trim_end_matches('/')),
    }
}

/// Creates a link for the caller (`for_user` empty or the caller's own name: needs one
/// factor, or an account API bearer token) or, for an administrator, for another user.
pub async fn create(app: &App, caller: &Caller<'_>, for_user: Option<&str>) -> Result<CreatedLink> {
    if caller.level() == AuthLevel::Anonymous {
        return Err(Error::Unauthenticated);
    }
    let data = caller.require(AuthLevel::OneFactor)?;
    let for_other = for_user.is_some_and(|u| u != data.username);
    let username = match for_user {
        Some(name) if for_other => {
            require_admin(app, caller)?;
            name
        }
        _ => data.username.as_str(),
    };
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    if user.disabled {
        return Err(Error::AccountUnavailable);
    }
    let username = user.username.as_str();
    let storage = &app.services.storage;
    let now = now();
    if storage.device_links_open(username, now).await? >= MAX_OPEN_PER_USER {
        return Err(Error::TooManyDeviceLinks);
    }
    let expires_at = now + LIFETIME_SECS;
    let mut attempt = 0;
    let (id, token) = loop {
        let token = generate();
        let record = DeviceLinkRecord {
            id: 0,
            token_hash: hash_of(app, &token),
            username: username.to_string(),
            created_by: data.username.clone(),
            created_at: now,
            expires_at,
            used_at: None,
        };
        match storage.device_link_insert(record).await {
            Ok(id) => break (id, token),
            // 190 random bits: a collision means a broken generator, but costs nothing to retry.
            Err(StorageError::Duplicate) if attempt < 2 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    tracing::info!(username = %username, by = %data.username, id, "device link created");
    let detail = serde_json::json!({"id": id, "expires_at": expires_at});
    let event = Event {
        name: "device_link.created",
        outcome: Outcome::Success,
        actor: &data.username,
        subject: username,
        detail,
    };
    audit::record(app, caller.context(), event).await;
    Ok(CreatedLink { url: link_url(app, caller.settings(), &token), token, expires_at })
}

/// The link `token` stands for and its user, when it is well formed, known, unused and
/// unexpired, and the user is active; [`Error::DeviceLinkInvalid`] otherwise.
async fn open_link(app: &App, token: &str) -> Result<(DeviceLinkRecord, std::sync::Arc<User>)> {
    if !is_well_formed(token) {
        return Err(Error::DeviceLinkInvalid);
    }
    let hash = hash_of(app, token);
    let link = app.services.storage.device_link_by_hash(&hash).await?.ok_or(Error::DeviceLinkInvalid)?;
    // The lookup matched on the hash already; compared again in constant time so that no
    // path decides on a secret-derived value by an early-exit comparison.
    if !bool::from(link.token_hash.as_bytes().ct_eq(hash.as_bytes())) || !link.usable(now()) {
        return Err(Error::DeviceLinkInvalid);
    }
    match app.services.users.get(&link.username).await? {
        Some(user) if !user.disabled && user.username == link.username => Ok((link, user)),
        _ => Err(Error::DeviceLinkInvalid),
    }
}

/// What the link `token` is for, while it can be used.
pub async fn describe(app: &App, token: &str) -> Result<LinkView> {
    let (link, user) = open_link(app, token).await?;
    let display_name = if user.display_name.is_empty() { user.username.clone() } else { user.display_name.clone() };
    Ok(LinkView { username: user.username.clone(), display_name, expires_at: link.expires_at })
}

/// Starts registering a passkey for the link's user: the creation options for the
/// browser; the ceremony's state goes to it in a sealed cookie bound to this link.
pub async fn register_begin(app: &App, caller: &mut Caller<'_>, token: &str) -> Result<serde_json::Value> {
    let (link, user) = open_link(app, token).await?;
    let storage = &app.services.storage;
    let username = &user.username;
    let user_id = storage
        .webauthn_user_id(username, true)
        .await?
        .and_then(|id| Uuid::parse_str(&id).ok())
        .ok_or_else(|| Error::Internal("no WebAuthn user handle".into()))?;
    let existing = storage.webauthn_credentials(username).await?;
    let exclude = existing.iter().filter_map(passkey_of).map(|k| k.cred_id().clone()).collect();
    let display_name = if user.display_name.is_empty() { username } else { &user.display_name };
    let settings = caller.settings();
    let (options, state) = app
        .services
        .webauthn
        .start_registration(&settings.domain, user_id, username, display_name, exclude, true)
        .map_err(|e| ceremony_failed(&e))?;
    let state = CeremonyState { token_hash: link.token_hash, state };
    caller.set_cookie(DEVICE_LINK_CEREMONY.seal(app, settings, state)?);
    Ok(options)
}

/// A description for the new passkey that none of the user's credentials has yet.
async fn free_description(app: &App, username: &str, asked: Option<&str>) -> Result<String> {
    let base = match asked.map(str::trim) {
        Some(d) if !d.is_empty() => valid_description(d)?,
        _ => DEFAULT_DESCRIPTION.to_string(),
    };
    let taken: Vec<String> =
        app.services.storage.webauthn_credentials(username).await?.into_iter().map(|c| c.description).collect();
    let free = |d: &str| !taken.iter().any(|t| t.eq_ignore_ascii_case(d));
    if free(&base) {
        return Ok(base);
    }
    (2..100)
        .map(|n| {
            let suffix = format!(" ({n})");
            let keep = super::security_keys::MAX_DESCRIPTION - suffix.chars().count();
            format!("{}{suffix}", base.chars().take(keep).collect::<String>())
        })
        .find(|d| free(d))
        .ok_or(Error::DescriptionTaken)
}

/// Finishes the registration with the browser's answer: the state must come from a
/// registration begun with this link; the answer must verify; then the link is used
/// (once: a lost race is [`Error::DeviceLinkInvalid`]) and the passkey stored. The device
/// is not signed in.
pub async fn register_finish(
    app: &App,
    caller: &mut Caller<'_>,
    token: &str,
    answer: &RegisterPublicKeyCredential,
    description: Option<&str>,
) -> Result<()> {
    if !is_well_formed(token) {
        return Err(Error::DeviceLinkInvalid);
    }
    let settings = caller.settings();
    let missing = || Error::NothingPending(Pending::KeyRegistration);
    let sealed = caller.cookie(DEVICE_LINK_CEREMONY.name).ok_or_else(missing)?;
    // The state is taken whatever happens next.
    caller.set_cookie(DEVICE_LINK_CEREMONY.clear(app, settings));
    let pending: CeremonyState = DEVICE_LINK_CEREMONY.open(app, settings, &sealed).ok_or_else(missing)?;
    let (link, user) = open_link(app, token).await?;
    if !bool::from(pending.token_hash.as_bytes().ct_eq(link.token_hash.as_bytes())) {
        // Begun with another link.
        return Err(missing());
    }
    let description = free_description(app, &user.username, description).await?;
    let registered = app
        .services
        .webauthn
        .finish_registration(&settings.domain, answer, &pending.state, true)
        .map_err(|e| ceremony_failed(&e))?;
    if !app.services.storage.device_link_take(&link.token_hash, now()).await? {
        return Err(Error::DeviceLinkInvalid);
    }
    let new = NewCredential {
        username: &user.username,
        display_name: &user.display_name,
        emails: &user.emails,
        description: &description,
        kid: &answer.id,
    };
    store_registered(app, caller, new, registered).await?;
    tracing::info!(username = %user.username, id = link.id, "device link used");
    let detail = serde_json::json!({"id": link.id, "created_by": link.created_by, "description": description});
    let username = user.username.as_str();
    let event =
        Event { name: "device_link.used", outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, caller.context(), event).await;
    crate::invalidation::user_changed(app, username).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let token = generate();
        assert!(is_well_formed(&token), "{token}");
        assert_eq!(token.len(), TOKEN_PREFIX.len() + TOKEN_RANDOM_LEN);
        assert_ne!(generate(), token);
        for bad in [
            "",
            "pdl_",
            "pdl_abc",
            &format!("pdl_{}", "a".repeat(31)),
            &format!("pdl_{}", "a".repeat(33)),
            &format!("pdx_{}", "a".repeat(32)),
            &format!("pdl_{}-", "a".repeat(31)),
            &format!("pdl_{}é", "a".repeat(30)),
            &format!("PDL_{}", "a".repeat(32)),
        ] {
            assert!(!is_well_formed(bad), "{bad}");
        }
    }
}
