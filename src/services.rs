//! The services request handlers use, opened once at startup: storage, sessions, users,
//! regulation. Handlers reach them through the application; services never see HTTP types.

use std::sync::Arc;

use crate::authn::api_token_cache::ApiTokenCache;
use crate::authn::basic_cache::BasicCache;
use crate::authn::hashing_pool::HashingPool;
use crate::authn::users::Users;
use crate::config::Configuration;
use crate::identity::account_token::AccountTokens;
use crate::identity::codes::OneTimeCodes;
use crate::identity::rate_limit::ClientLimiter;
use crate::identity::reset_token::ResetTokens;
use crate::notifier::Notifier;
use crate::regulation::Regulator;
use crate::second_factor::totp::TotpService;
use crate::second_factor::webauthn::WebAuthnService;
use crate::session::Sessions;
use crate::storage::Storage;

/// Everything handlers need besides the configuration.
pub struct Services {
    /// The database.
    pub storage: Storage,
    /// Sessions for every cookie domain.
    pub sessions: Sessions,
    /// The users (file, database or LDAP directory).
    pub users: Users,
    /// Failed-login bans.
    pub regulator: Regulator,
    /// Bounded, off-runtime password hashing.
    pub hashing: HashingPool,
    /// Per-address limit on refused bootstrap tokens.
    pub bootstrap_limiter: ClientLimiter,
    /// Set once users were seen: the first administrator exists, bootstrap is over.
    pub setup_complete: std::sync::atomic::AtomicBool,
    /// Recently verified Basic credentials (authz endpoints).
    pub basic_cache: BasicCache,
    /// Tells other replicas to drop cached entries of a user that changed here.
    pub invalidation: crate::invalidation::Invalidation,
    /// Recently verified personal API tokens (authz endpoints, token checks).
    pub api_token_cache: ApiTokenCache,
    /// Per-address limit on `GET /api/auth/verify-token`.
    pub api_token_check_limiter: ClientLimiter,
    /// TOTP parameters and checks.
    pub totp: TotpService,
    /// WebAuthn relying parties.
    pub webauthn: WebAuthnService,
    /// Emailed one-time codes.
    pub codes: OneTimeCodes,
    /// Password reset links.
    pub reset_tokens: ResetTokens,
    /// Per-client limit on password reset requests.
    pub reset_limiter: ClientLimiter,
    /// Outgoing mail.
    pub notifier: Arc<Notifier>,
    /// The OpenID Connect provider, when `identity_providers.oidc` is set.
    pub oidc: Option<Arc<crate::oidc::Provider>>,
    /// Per-address limit on pending authorizations stored for browsers that must log in
    /// or consent first (each is a database row).
    pub oidc_flow_limiter: ClientLimiter,
    /// Wrong device user codes per signed-in user and per address: at the limit, entering
    /// codes is locked for the rest of the window (brute force of user codes).
    pub oidc_user_code_limiter: ClientLimiter,
    /// The account API's bearer tokens, when `account_api.enabled`.
    pub account_tokens: Option<AccountTokens>,
    /// Per-address limit on signups and reset links requested through the account API.
    pub account_limiter: ClientLimiter,
    /// The upstream OpenID provider users may sign in with.
    pub upstream: crate::upstream_oidc::Upstream,
}

impl Services {
    /// Opens every service `config` asks for. Fails with a message naming what could not
    /// be opened and why.
    pub async fn open(config: &Configuration) -> Result<Self, String> {
        let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
        let storage = Storage::open(&config.storage, certificates).await.map_err(|e| format!("storage: {e}"))?;
        let users = {
            let (config, storage) = (config.clone(), storage.clone());
            tokio::task::spawn_blocking(move || Users::open(&config, &storage))
                .await
                .map_err(|e| format!("users: {e}"))?
                .map_err(|e| e.to_string())?
        };
        if let Some(ldap) = users.ldap() {
            let ldap = ldap.clone();
            tokio::spawn(async move { ldap.probe().await });
        }
        let sessions = Sessions::from_config(config).await.map_err(|e| format!("sessions: {e}"))?;
        let invalidation = crate::invalidation::Invalidation::open(config).await?;
        let no_users = !users.any().await.map_err(|e| e.to_string())?;
        if no_users {
            let (token, _) = crate::authn::bootstrap::issue(
                &storage,
                crate::authn::bootstrap::BY_STARTUP,
                crate::authn::bootstrap::DEFAULT_LIFETIME,
                crate::clock::now(),
            )
            .await
            .map_err(|e| format!("bootstrap token: {e}"))?;
            // Logged once, on purpose: this is how the operator receives it.
            tracing::warn!(
                "no users exist yet: create the first administrator within 1 hour with \
                 POST /auth/bootstrap/complete {{\"token\":\"{token}\",\"username\":...,\"password\":...,\"email\":...}} \
                 or the form on the login page"
            );
        }
        let webauthn = WebAuthnService::new(config)?;
        let notifier = Notifier::from_config(&config.notifier)?;
        if !config.notifier.disable_startup_check {
            notifier.startup_check().await.map_err(|e| format!("notifier: {e}"))?;
        }
        let oidc = match &config.identity_providers.oidc {
            Some(oidc) => Some(Arc::new(crate::oidc::Provider::open(oidc, &storage).await?)),
            None => None,
        };
        let account_tokens = if config.account_api.enabled {
            let secret = &config.account_api.jwt_secret;
            let key = if secret.is_empty() {
                storage
                    .sealed_value_or_create(crate::identity::account_token::GENERATED_KEY_ROW, || {
                        let mut key = vec![0u8; 32];
                        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
                        Ok(key)
                    })
                    .await
                    .map_err(|e| format!("account_api: the token key: {e}"))?
            } else {
                secret.expose().as_bytes().to_vec()
            };
            let lifespan = i64::try_from(config.account_api.token_lifespan.get().as_secs()).unwrap_or(3600);
            Some(AccountTokens::new(&key, lifespan))
        } else {
            None
        };
        let upstream = crate::upstream_oidc::Upstream::new(&config.upstream_oidc, certificates)?;
        Ok(Self {
            upstream,
            account_tokens,
            account_limiter: ClientLimiter::new("account", crate::identity::rate_limit::PER_CLIENT),
            oidc,
            oidc_flow_limiter: ClientLimiter::new("oidc-flows", crate::oidc::FLOWS_PER_ADDRESS),
            oidc_user_code_limiter: ClientLimiter::new("oidc-user-codes", crate::oidc::device::USER_CODE_FAILURES),
            regulator: Regulator::new(&config.regulation, storage.clone()),
            totp: TotpService::new(&config.totp),
            webauthn,
            codes: OneTimeCodes::new(storage.clone()),
            reset_tokens: ResetTokens::new(&config.identity_validation.reset_password, storage.clone()),
            reset_limiter: ClientLimiter::new("reset", crate::identity::rate_limit::PER_CLIENT),
            notifier: Arc::new(notifier),
            storage,
            sessions,
            users,
            hashing: HashingPool::per_core(),
            bootstrap_limiter: ClientLimiter::new("bootstrap", crate::flows::bootstrap::REFUSED_TOKENS_PER_ADDRESS),
            setup_complete: std::sync::atomic::AtomicBool::new(!no_users),
            basic_cache: BasicCache::new(),
            invalidation,
            api_token_cache: ApiTokenCache::new(config.api_tokens.cache_lifespan.get()),
            api_token_check_limiter: ClientLimiter::new("token-checks", crate::flows::api_tokens::CHECKS_PER_ADDRESS),
        })
    }
}
