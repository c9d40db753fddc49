//! The route table: every route declared once, as path + method → handler, built at
//! startup from the configuration so that optional features add or remove their routes.
//! The `Allow` header of a 405 and the OpenAPI cross-check read this same declaration;
//! handlers never look at the method again.

use std::collections::HashMap;

use http::Method;

use crate::config::Configuration;

/// A JSON API operation (one per path and method).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `GET|HEAD /api/health`.
    Health,
    /// `GET|HEAD /api/health/ready`.
    Ready,
    /// `GET /api/state`.
    State,
    /// `GET /api/configuration`.
    Configuration,
    /// `GET /api/configuration/password-policy`.
    PasswordPolicy,
    /// `GET|HEAD /api/openapi.yml`.
    OpenApi,
    /// `GET|HEAD /api/`: the API reference page.
    Reference,
    /// `POST /api/logout`.
    Logout,
    /// `GET|POST /api/user/info`.
    UserInfo,
    /// `POST /api/user/info/2fa_method`.
    SetPreferredMethod,
    /// `GET /api/user/session/elevation`.
    ElevationStatus,
    /// `POST /api/user/session/elevation`.
    ElevationStart,
    /// `PUT /api/user/session/elevation`.
    ElevationVerify,
    /// `DELETE /api/user/session/elevation/{id}`.
    ElevationRevoke,
    /// `GET /api/secondfactor/totp/register`.
    TotpOptions,
    /// `PUT /api/secondfactor/totp/register`.
    TotpOffer,
    /// `POST /api/secondfactor/totp/register`.
    TotpConfirm,
    /// `DELETE /api/secondfactor/totp/register`.
    TotpCancel,
    /// `GET /api/secondfactor/totp`.
    TotpDescribe,
    /// `POST /api/secondfactor/totp`.
    TotpSignIn,
    /// `DELETE /api/secondfactor/totp`.
    TotpRemove,
    /// `GET /api/secondfactor/recovery-codes`.
    RecoveryRemaining,
    /// `PUT /api/secondfactor/recovery-codes`.
    RecoveryRegenerate,
    /// `POST /api/secondfactor/recovery-codes`.
    RecoverySignIn,
    /// `GET /api/secondfactor/webauthn`.
    SecurityKeyBegin,
    /// `POST /api/secondfactor/webauthn`.
    SecurityKeyFinish,
    /// `GET /api/secondfactor/webauthn/credentials`.
    SecurityKeyList,
    /// `PUT /api/secondfactor/webauthn/credential/register`.
    KeyRegisterBegin,
    /// `POST /api/secondfactor/webauthn/credential/register`.
    KeyRegisterFinish,
    /// `DELETE /api/secondfactor/webauthn/credential/register`.
    KeyRegisterCancel,
    /// `PUT /api/secondfactor/webauthn/credential/{id}`.
    KeyRename,
    /// `DELETE /api/secondfactor/webauthn/credential/{id}`.
    KeyDelete,
    /// `GET /api/firstfactor/passkey`.
    PasskeyBegin,
    /// `POST /api/firstfactor/passkey`.
    PasskeyFinish,
    /// `PUT /api/secondfactor/email`.
    EmailCodeSend,
    /// `POST /api/secondfactor/email`.
    EmailCodeVerify,
    /// `POST /api/reset-password/identity/start`.
    ResetStart,
    /// `POST /api/reset-password/identity/finish`.
    ResetRedeem,
    /// `POST /api/reset-password`.
    ResetSet,
    /// `DELETE /api/reset-password`.
    ResetRevoke,
    /// `POST /api/change-password`.
    ChangePassword,
    /// `POST /api/checks/safe-redirection`.
    SafeRedirection,
    /// `POST /api/firstfactor`.
    FirstFactor,
    /// `POST /api/firstfactor/reauthenticate`.
    Reauthenticate,
    /// `POST /api/secondfactor/password`.
    SecondFactorPassword,
    /// `POST /auth/bootstrap/complete`, `POST /api/bootstrap`: the first administrator.
    Bootstrap,
    /// `POST /auth/bootstrap/tokens`: a bootstrap token, for an administrator.
    BootstrapIssue,
    /// `GET /api/admin/users`.
    AdminListUsers,
    /// `POST /api/admin/users`.
    AdminCreateUser,
    /// `GET /api/admin/users/{username}`.
    AdminGetUser,
    /// `PATCH /api/admin/users/{username}`.
    AdminUpdateUser,
    /// `DELETE /api/admin/users/{username}`.
    AdminDeleteUser,
    /// `POST /api/admin/users/{username}/password`.
    AdminSetPassword,
    /// `POST /api/admin/users/{username}/reset-email`.
    AdminSendResetEmail,
    /// `DELETE /api/admin/users/{username}/sessions`.
    AdminRevokeSessions,
    /// `DELETE /api/admin/users/{username}/totp`.
    AdminRemoveTotp,
    /// `DELETE /api/admin/users/{username}/webauthn/{id}`.
    AdminRemoveWebAuthn,
    /// `PUT /api/admin/users/{username}/passwordless`.
    AdminSetPasswordless,
    /// `GET /api/admin/bans`.
    AdminListBans,
    /// `DELETE /api/admin/bans/{username}`.
    AdminUnbanUser,
    /// `DELETE /api/admin/bans/ip/{ip}`.
    AdminUnbanIp,
    /// `GET /api/admin/audit`.
    AdminAudit,
    /// `GET /api/admin/sessions/stats`.
    AdminSessionStats,
    /// `POST /auth/api/validate`.
    PasskeyApiValidate,
    /// `GET /auth/api/forward`.
    PasskeyApiForward,
    /// `POST /auth/api/logout`.
    PasskeyApiLogout,
    /// `POST /auth/api/user-info`.
    PasskeyApiUserInfo,
    /// `DELETE /auth/api/credential/{id}`.
    PasskeyApiDeleteCredential,
    /// `DELETE /auth/api/session/{id}`.
    PasskeyApiDeleteSession,
    /// `POST /auth/api/user/logout-all`.
    PasskeyApiLogoutAll,
    /// `PUT /auth/api/user/display-name`.
    PasskeyApiDisplayName,
    /// `GET /auth/provider/oidc`.
    UpstreamProvider,
    /// `PUT /auth/provider/oidc`.
    UpstreamProviderSet,
    AccountLogin,
    LocalLogin,
    AdminRevokeAllSessions,
    AccountLoginSecondFactor,
    AccountSignup,
    AccountMe,
    AccountSetName,
    AccountSetPassword,
    AccountSendResetLink,
    AccountResetWithToken,
    AccountSendOtp,
    AccountVerifyOtp,
    AccountCreateReferral,
    /// `POST /api/auth/me/create-token`.
    ApiTokenCreate,
    /// `POST /api/auth/me/tokens`: the caller's tokens.
    ApiTokenList,
    /// `DELETE /api/auth/me/tokens/{id}`.
    ApiTokenRevoke,
    /// `GET /api/auth/verify-token`.
    ApiTokenVerify,
    /// `POST /auth/api/create-link`: a device-addition link.
    DeviceLinkCreate,
    /// `PUT /auth/{token}/begin`: a device-addition link's passkey options.
    DeviceLinkBegin,
    /// `POST /auth/{token}/finish`: the new device's passkey.
    DeviceLinkFinish,
    /// `POST /auth/api/set-session`: a session token (or account access token) for a cookie.
    SetSession,
}

impl Api {
    /// Whether this is one of the account API's routes (`/api/auth/...`).
    pub fn is_account_api(self) -> bool {
        matches!(
            self,
            Self::AccountLogin
                | Self::LocalLogin
                | Self::AccountLoginSecondFactor
                | Self::AccountSignup
                | Self::AccountMe
                | Self::AccountSetName
                | Self::AccountSetPassword
                | Self::AccountSendResetLink
                | Self::AccountResetWithToken
                | Self::AccountSendOtp
                | Self::AccountVerifyOtp
                | Self::AccountCreateReferral
        )
    }
}

/// A portal page: GET shows it, POST submits its form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/`: on to the login page.
    Root,
    /// The login form (`/login`, `/login/passkey`).
    LoginForm,
    /// `/login/oidc`: off to the upstream OpenID provider.
    UpstreamStart,
    /// Seed 004's account summary at `/` of a host that is not the auth host (not routed:
    /// chosen by the host mode).
    AccountSummary,
    /// `/restricted`: seed 004's "permission denied" page.
    Restricted,
    /// `/login/oidc/callback`: back from it.
    UpstreamCallback,
    /// The login form's submission.
    Login,
    /// The TOTP code form.
    TotpForm,
    /// Its submission.
    Totp,
    /// The recovery code form.
    RecoveryForm,
    /// Its submission.
    Recovery,
    /// The emailed code form.
    EmailCodeForm,
    /// Its submission (send a code, or check one).
    EmailCode,
    /// The security key page.
    SecurityKeyForm,
    /// `/setup`: the first administrator's form, while no user exists.
    SetupForm,
    /// Creating the first administrator.
    Setup,
    /// The sign-out confirmation.
    LogoutForm,
    /// Signing out.
    Logout,
    /// The forgotten-password form.
    ForgotForm,
    /// Asking for a reset link.
    Forgot,
    /// The new-password form of a reset link.
    ResetForm,
    /// Setting the new password.
    Reset,
    /// The account page.
    Profile,
    /// The change-password form.
    PasswordForm,
    /// Changing the password.
    Password,
    /// The elevation form.
    ElevateForm,
    /// Asking for or entering an elevation code.
    Elevate,
    /// The TOTP setup page.
    TotpEnrollForm,
    /// Confirming a TOTP setup.
    TotpEnroll,
    /// The recovery codes page.
    RecoveryCodes,
    /// Renewing the recovery codes.
    RecoveryCodesRenew,
    /// The TOTP removal confirmation.
    TotpDisableForm,
    /// Removing TOTP.
    TotpDisable,
    /// Renaming or deleting a security key.
    SecurityKeyChange,
    /// Ending every session of the account.
    SignOutEverywhere,
    /// The passkey registration page.
    RegisterPasskey,
    /// The mail's "cancel this code" link (`/revoke/one-time-code?id=`, Authelia's route,
    /// or `/revoke/elevation/{id}` of older mails): a confirmation.
    RevokeCodeForm,
    /// Cancelling the code.
    RevokeCode,
    /// The reset mail's "I did not ask for this" link (`/revoke/reset-password?token=`):
    /// a confirmation.
    RevokeResetForm,
    /// Cancelling the reset link.
    RevokeReset,
    /// `/admin`: on to the users.
    AdminHome,
    /// `/admin/login`: the portal's sign-in, coming back to the console.
    AdminLogin,
    /// `/admin/logout`: the portal's sign-out.
    AdminLogout,
    /// `/admin/users`: the list, filters, bans and the create form.
    AdminUsers,
    /// Creating a user.
    AdminCreateUser,
    /// `/admin/users/{username}`: one user.
    AdminUser,
    /// An action on one user (with a confirmation step for destructive ones).
    AdminUserAction,
    /// Lifting a ban on an address.
    AdminUnbanIp,
    /// `/admin/audit`: the trail, filtered and paged.
    AdminAudit,
    /// `/admin/audit.csv`: the same as CSV.
    AdminAuditCsv,
    /// `/admin/audit.json`: the same as JSON.
    AdminAuditJson,
    /// `/admin/settings`: the effective configuration, secrets redacted.
    AdminSettings,
    /// `/admin/clients`: the OpenID Connect clients (read-only).
    AdminClients,
    /// `/consent`: what an OpenID Connect client asks for.
    ConsentForm,
    /// The user's decision.
    Consent,
    /// `/consent/openid/device-authorization`: where the user types a device's user code
    /// (RFC 8628 `verification_uri`).
    DeviceForm,
    /// The code typed, then the decision on the device's request.
    Device,
    /// `/auth/{token}`: a device-addition link opened on the new device.
    DeviceLink,
}

impl Page {
    /// Whether the page is part of the admin console.
    pub fn is_admin_page(self) -> bool {
        matches!(
            self,
            Self::AdminHome
                | Self::AdminLogin
                | Self::AdminLogout
                | Self::AdminUsers
                | Self::AdminCreateUser
                | Self::AdminUser
                | Self::AdminUserAction
                | Self::AdminUnbanIp
                | Self::AdminAudit
                | Self::AdminAuditCsv
                | Self::AdminAuditJson
                | Self::AdminSettings
                | Self::AdminClients
        )
    }

    /// Whether the page is part of the account (needs a logged-in session).
    pub fn is_account_page(self) -> bool {
        matches!(
            self,
            Self::Profile
                | Self::PasswordForm
                | Self::Password
                | Self::ElevateForm
                | Self::Elevate
                | Self::TotpEnrollForm
                | Self::TotpEnroll
                | Self::RecoveryCodes
                | Self::RecoveryCodesRenew
                | Self::TotpDisableForm
                | Self::TotpDisable
                | Self::SecurityKeyChange
                | Self::SignOutEverywhere
                | Self::RegisterPasskey
        )
    }
}

/// An endpoint of the OpenID Connect provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oidc {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `/.well-known/oauth-authorization-server` (RFC 8414).
    Metadata,
    /// `/jwks.json`, `/oauth/jwks`.
    Jwks,
    /// `/api/oidc/authorization`, `/oauth/authorize`.
    Authorization,
    /// `/api/oidc/pushed-authorization-request`.
    PushedAuthorization,
    /// `/api/oidc/device-authorization` (RFC 8628).
    DeviceAuthorization,
    /// `/api/oidc/token`, `/oauth/token`.
    Token,
    /// `/api/oidc/userinfo`, `/oauth/userinfo`.
    UserInfo,
    /// `/api/oidc/introspection`.
    Introspection,
    /// `/api/oidc/revocation`.
    Revocation,
    /// `/api/oidc/logout`: RP-initiated logout.
    EndSession,
    /// A CORS preflight on one of the above.
    Preflight,
}

/// A passkey ceremony over a WebSocket (`GET` with an upgrade).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebSocket {
    /// `/auth/ws/authenticate`: passwordless login.
    Authenticate,
    /// `/auth/ws/register`: a passkey for the signed-in user.
    Register,
}

/// What a route leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A JSON API operation.
    Api(Api),
    /// A portal page.
    Page(Page),
    /// A static file of the portal.
    Static,
    /// An authorization endpoint (index into the app's endpoints).
    Authz(usize),
    /// An endpoint of the OpenID Connect provider.
    Oidc(Oidc),
    /// A passkey ceremony over a WebSocket.
    WebSocket(WebSocket),
}

/// One path and the handler for each method it answers.
#[derive(Clone, Debug)]
pub struct Route {
    /// Path relative to the base path (a template for parameter routes).
    pub path: String,
    handlers: Vec<(Method, Endpoint)>,
}

impl Route {
    /// The handler for `method`, if the route answers it.
    pub fn endpoint(&self, method: &Method) -> Option<Endpoint> {
        self.handlers.iter().find(|(m, _)| m == method).map(|(_, e)| *e)
    }

    /// The methods answered, in declaration order (the `Allow` header).
    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.handlers.iter().map(|(m, _)| m)
    }
}

/// Exact-match routing (one hash probe), then routes with `{parameter}` segments (each
/// matching one non-empty segment; more literal segments win), then prefixes for
/// endpoints that also answer the paths below them.
#[derive(Debug)]
pub struct Router {
    routes: HashMap<String, Route>,
    params: Vec<(Vec<Segment>, Route)>,
    prefixes: Vec<Route>,
}

/// One segment of a route template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    /// Must be exactly this.
    Literal(String),
    /// Any non-empty segment.
    Param,
}

fn template_segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .map(|s| if s.starts_with('{') && s.ends_with('}') { Segment::Param } else { Segment::Literal(s.to_string()) })
        .collect()
}

fn template_matches(template: &[Segment], path: &str) -> bool {
    let mut parts = path.split('/');
    template.iter().all(|segment| match (segment, parts.next()) {
        (Segment::Literal(l), Some(p)) => l == p,
        (Segment::Param, Some(p)) => !p.is_empty(),
        (_, None) => false,
    }) && parts.next().is_none()
}

use http::Method as M;

/// What ExtAuthz and Legacy endpoints answer (the proxied request's own method).
const ANY: [Method; 8] = [M::GET, M::HEAD, M::OPTIONS, M::POST, M::PUT, M::PATCH, M::DELETE, M::TRACE];

impl Router {
    /// Declares every route `config` enables.
    pub fn new(config: &Configuration) -> Self {
        use Api::*;
        let mut r = Self { routes: HashMap::new(), params: Vec::new(), prefixes: Vec::new() };
        r.api("/api/health", &[(M::GET, Health), (M::HEAD, Health)]);
        r.api("/api/health/ready", &[(M::GET, Ready), (M::HEAD, Ready)]);
        r.api("/api/state", &[(M::GET, State)]);
        r.api("/api/configuration", &[(M::GET, Configuration)]);
        r.api("/api/configuration/password-policy", &[(M::GET, PasswordPolicy)]);
        r.api("/api/openapi.yml", &[(M::GET, OpenApi), (M::HEAD, OpenApi)]);
        r.api("/api/", &[(M::GET, Reference), (M::HEAD, Reference)]);
        r.api("/api/logout", &[(M::POST, Logout)]);
        r.api("/api/user/info", &[(M::GET, UserInfo), (M::POST, UserInfo)]);
        r.api("/api/user/info/2fa_method", &[(M::POST, SetPreferredMethod)]);
        r.api(
            "/api/user/session/elevation",
            &[(M::GET, ElevationStatus), (M::POST, ElevationStart), (M::PUT, ElevationVerify)],
        );
        r.api_param("/api/user/session/elevation/{id}", &[(M::DELETE, ElevationRevoke)]);
        if !config.totp.disable {
            r.api(
                "/api/secondfactor/totp/register",
                &[(M::GET, TotpOptions), (M::PUT, TotpOffer), (M::POST, TotpConfirm), (M::DELETE, TotpCancel)],
            );
            r.api("/api/secondfactor/totp", &[(M::GET, TotpDescribe), (M::POST, TotpSignIn), (M::DELETE, TotpRemove)]);
            r.api(
                "/api/secondfactor/recovery-codes",
                &[(M::GET, RecoveryRemaining), (M::POST, RecoverySignIn), (M::PUT, RecoveryRegenerate)],
            );
        }
        if !config.webauthn.disable {
            r.api("/api/secondfactor/webauthn", &[(M::GET, SecurityKeyBegin), (M::POST, SecurityKeyFinish)]);
            r.api("/api/secondfactor/webauthn/credentials", &[(M::GET, SecurityKeyList)]);
            r.api(
                "/api/secondfactor/webauthn/credential/register",
                &[(M::PUT, KeyRegisterBegin), (M::POST, KeyRegisterFinish), (M::DELETE, KeyRegisterCancel)],
            );
            r.api_param(
                "/api/secondfactor/webauthn/credential/{credentialID}",
                &[(M::PUT, KeyRename), (M::DELETE, KeyDelete)],
            );
            // JSON steps of the passkey registration page: PUT begins, POST finishes.
            r.api("/register/passkey/begin", &[(M::PUT, KeyRegisterBegin)]);
            r.api("/register/passkey/finish", &[(M::POST, KeyRegisterFinish)]);
            // Seed 004's device-addition links: made here, opened on the new device.
            r.api("/auth/api/create-link", &[(M::POST, DeviceLinkCreate)]);
            r.param("/auth/{token}", get_head(Endpoint::Page(Page::DeviceLink)));
            r.api_param("/auth/{token}/begin", &[(M::PUT, DeviceLinkBegin)]);
            r.api_param("/auth/{token}/finish", &[(M::POST, DeviceLinkFinish)]);
            // Seed 004's passkey ceremonies over WebSockets.
            r.add("/auth/ws/register", vec![(M::GET, Endpoint::WebSocket(WebSocket::Register))]);
            if config.webauthn.enable_passkey_login {
                r.add("/auth/ws/authenticate", vec![(M::GET, Endpoint::WebSocket(WebSocket::Authenticate))]);
                r.api("/api/firstfactor/passkey", &[(M::GET, PasskeyBegin), (M::POST, PasskeyFinish)]);
                if config.webauthn.experimental_enable_passkey_upgrade {
                    r.api("/api/secondfactor/password", &[(M::POST, SecondFactorPassword)]);
                }
                // JSON steps of the passkey login page.
                r.api("/login/passkey/begin", &[(M::GET, PasskeyBegin)]);
                r.api("/login/passkey/finish", &[(M::POST, PasskeyFinish)]);
            }
        }
        if config.email_otp.enable {
            r.api("/api/secondfactor/email", &[(M::PUT, EmailCodeSend), (M::POST, EmailCodeVerify)]);
        }
        let reset = &config.authentication_backend.password_reset;
        if !reset.disable && reset.custom_url.is_none() {
            r.api("/api/reset-password/identity/start", &[(M::POST, ResetStart)]);
            r.api("/api/reset-password/identity/finish", &[(M::POST, ResetRedeem)]);
            r.api("/api/reset-password", &[(M::POST, ResetSet), (M::DELETE, ResetRevoke)]);
        }
        if !config.authentication_backend.password_change.disable {
            r.api("/api/change-password", &[(M::POST, ChangePassword)]);
        }
        r.api("/api/checks/safe-redirection", &[(M::POST, SafeRedirection)]);
        r.api("/api/firstfactor", &[(M::POST, FirstFactor)]);
        r.api("/api/firstfactor/reauthenticate", &[(M::POST, Reauthenticate)]);
        r.api("/api/bootstrap", &[(M::POST, Bootstrap)]);
        // Seed 003's bootstrap: the same completion, and tokens issued by administrators.
        r.api("/auth/bootstrap/complete", &[(M::POST, Bootstrap)]);
        r.api("/auth/bootstrap/tokens", &[(M::POST, BootstrapIssue)]);
        r.api("/api/admin/users", &[(M::GET, AdminListUsers), (M::POST, AdminCreateUser)]);
        r.api_param(
            "/api/admin/users/{username}",
            &[(M::GET, AdminGetUser), (M::PATCH, AdminUpdateUser), (M::DELETE, AdminDeleteUser)],
        );
        r.api_param("/api/admin/users/{username}/password", &[(M::POST, AdminSetPassword)]);
        r.api_param("/api/admin/users/{username}/reset-email", &[(M::POST, AdminSendResetEmail)]);
        r.api_param("/api/admin/users/{username}/sessions", &[(M::DELETE, AdminRevokeSessions)]);
        r.api_param("/api/admin/users/{username}/totp", &[(M::DELETE, AdminRemoveTotp)]);
        r.api_param("/api/admin/users/{username}/webauthn/{id}", &[(M::DELETE, AdminRemoveWebAuthn)]);
        r.api_param("/api/admin/users/{username}/passwordless", &[(M::PUT, AdminSetPasswordless)]);
        r.api("/api/admin/bans", &[(M::GET, AdminListBans)]);
        r.api_param("/api/admin/bans/{username}", &[(M::DELETE, AdminUnbanUser)]);
        r.api_param("/api/admin/bans/ip/{ip}", &[(M::DELETE, AdminUnbanIp)]);
        r.api("/api/admin/audit", &[(M::GET, AdminAudit)]);
        r.api("/api/admin/sessions/stats", &[(M::GET, AdminSessionStats)]);
        // Seed 003's web-session administration, over the same operations.
        r.api("/auth/sessions/stats", &[(M::GET, AdminSessionStats)]);
        r.api("/auth/sessions/revoke-all", &[(M::POST, AdminRevokeAllSessions)]);
        r.api("/auth/provider/oidc", &[(M::GET, UpstreamProvider), (M::PUT, UpstreamProviderSet)]);
        r.passkey_api(config);
        r.api("/auth/api/set-session", &[(M::POST, SetSession)]);
        if config.account_api.enabled {
            r.account_api(config);
        }
        if config.api_tokens.enabled {
            // Personal API tokens (seed 001's paths).
            r.api("/api/auth/me/create-token", &[(M::POST, ApiTokenCreate)]);
            r.api("/api/auth/me/tokens", &[(M::POST, ApiTokenList)]);
            r.api_param("/api/auth/me/tokens/{id}", &[(M::DELETE, ApiTokenRevoke)]);
            r.api("/api/auth/verify-token", &[(M::GET, ApiTokenVerify)]);
        }
        r.pages();
        if config.identity_providers.oidc.is_some() {
            r.oidc();
        }
        r.prefixes.push(Route { path: "/static/".into(), handlers: get_head(Endpoint::Static) });
        r.authz(config);
        r
    }

    /// The account API (seed 001), bearer tokens instead of the session cookie.
    fn account_api(&mut self, config: &Configuration) {
        use Api::*;
        self.api("/api/auth/login", &[(M::POST, AccountLogin)]);
        // Seed 003's local login: the same login, answered with 201.
        self.api("/auth/local/login", &[(M::POST, LocalLogin)]);
        self.api("/api/auth/login/second-factor", &[(M::POST, AccountLoginSecondFactor)]);
        self.api("/api/auth/me", &[(M::GET, AccountMe)]);
        self.api("/api/auth/me/name", &[(M::PUT, AccountSetName)]);
        if !config.authentication_backend.password_change.disable {
            self.api("/api/auth/me/password", &[(M::PUT, AccountSetPassword)]);
        }
        let reset = &config.authentication_backend.password_reset;
        if !reset.disable && reset.custom_url.is_none() {
            self.api("/api/auth/send-password-reset-link", &[(M::POST, AccountSendResetLink)]);
            self.api("/api/auth/reset-password-with-token", &[(M::POST, AccountResetWithToken)]);
        }
        self.api("/api/auth/me/send-otp", &[(M::POST, AccountSendOtp)]);
        self.api("/api/auth/verify-otp", &[(M::POST, AccountVerifyOtp)]);
        if config.signup.enabled {
            self.api("/api/auth/signup", &[(M::POST, AccountSignup)]);
            self.api("/api/auth/me/referrals", &[(M::POST, AccountCreateReferral)]);
        }
    }

    /// Seed 004's account API under `/auth/api/`, the same on every host.
    fn passkey_api(&mut self, config: &Configuration) {
        use Api::*;
        self.api("/auth/api/validate", &[(M::POST, PasskeyApiValidate)]);
        self.api("/auth/api/forward", &[(M::GET, PasskeyApiForward), (M::HEAD, PasskeyApiForward)]);
        self.api("/auth/api/logout", &[(M::POST, PasskeyApiLogout)]);
        self.api("/auth/api/user-info", &[(M::POST, PasskeyApiUserInfo)]);
        if !config.webauthn.disable {
            self.api_param("/auth/api/credential/{id}", &[(M::DELETE, PasskeyApiDeleteCredential)]);
        }
        self.api_param("/auth/api/session/{id}", &[(M::DELETE, PasskeyApiDeleteSession)]);
        self.api("/auth/api/user/logout-all", &[(M::POST, PasskeyApiLogoutAll)]);
        self.api("/auth/api/user/display-name", &[(M::PUT, PasskeyApiDisplayName)]);
    }

    /// The portal's pages: GET (and HEAD) show, POST submits.
    fn pages(&mut self) {
        use Page::*;
        let pages: &[(&str, Option<Page>, Option<Page>)] = &[
            ("/", Some(Root), None),
            ("/login", Some(LoginForm), Some(Login)),
            ("/login/passkey", Some(LoginForm), None),
            ("/login/oidc", Some(UpstreamStart), None),
            ("/restricted", Some(Restricted), None),
            ("/login/oidc/callback", Some(UpstreamCallback), None),
            ("/login/totp", Some(TotpForm), Some(Totp)),
            ("/login/totp/recovery", Some(RecoveryForm), Some(Recovery)),
            ("/login/otp", Some(EmailCodeForm), Some(EmailCode)),
            ("/login/webauthn", Some(SecurityKeyForm), None),
            ("/logout", Some(LogoutForm), Some(Logout)),
            ("/setup", Some(SetupForm), Some(Setup)),
            ("/forgot-password", Some(ForgotForm), Some(Forgot)),
            ("/reset-password", Some(ResetForm), Some(Reset)),
            // Authelia's frontend routes, which the mails link to, so that either portal
            // serves them.
            ("/reset-password/step2", Some(ResetForm), Some(Reset)),
            ("/revoke/reset-password", Some(RevokeResetForm), Some(RevokeReset)),
            ("/revoke/one-time-code", Some(RevokeCodeForm), Some(RevokeCode)),
            ("/profile", Some(Profile), None),
            ("/profile/password", Some(PasswordForm), Some(Password)),
            ("/profile/elevate", Some(ElevateForm), Some(Elevate)),
            ("/profile/totp/enroll", Some(TotpEnrollForm), Some(TotpEnroll)),
            ("/profile/totp/recovery-codes", Some(RecoveryCodes), Some(RecoveryCodesRenew)),
            ("/profile/totp/disable", Some(TotpDisableForm), Some(TotpDisable)),
            ("/profile/webauthn", None, Some(SecurityKeyChange)),
            ("/profile/sign-out-everywhere", None, Some(SignOutEverywhere)),
            ("/register/passkey", Some(RegisterPasskey), None),
        ];
        self.add_pages(pages);
        let mut revoke = get_head(Endpoint::Page(RevokeCodeForm));
        revoke.push((M::POST, Endpoint::Page(RevokeCode)));
        self.param("/revoke/elevation/{id}", revoke);
        let console: &[(&str, Option<Page>, Option<Page>)] = &[
            ("/admin", Some(AdminHome), None),
            ("/admin/login", Some(AdminLogin), None),
            ("/admin/logout", Some(AdminLogout), None),
            ("/admin/users", Some(AdminUsers), Some(AdminCreateUser)),
            ("/admin/bans", None, Some(AdminUnbanIp)),
            ("/admin/audit", Some(AdminAudit), None),
            ("/admin/audit.csv", Some(AdminAuditCsv), None),
            ("/admin/audit.json", Some(AdminAuditJson), None),
            ("/admin/settings", Some(AdminSettings), None),
        ];
        self.add_pages(console);
        let mut user = get_head(Endpoint::Page(AdminUser));
        user.push((M::POST, Endpoint::Page(AdminUserAction)));
        self.param("/admin/users/{username}", user);
    }

    /// The OpenID Connect provider: discovery names the canonical paths; the seed's
    /// `/oauth/*` paths are aliases of the same endpoints.
    fn oidc(&mut self) {
        use crate::oidc::paths;
        let e = Endpoint::Oidc;
        let preflight = (M::OPTIONS, e(Oidc::Preflight));
        self.add(paths::DISCOVERY, get_head(e(Oidc::Discovery)));
        self.add(paths::METADATA, get_head(e(Oidc::Metadata)));
        for path in [paths::JWKS, "/oauth/jwks"] {
            self.add(path, get_head(e(Oidc::Jwks)));
        }
        for path in [paths::AUTHORIZATION, "/oauth/authorize"] {
            self.add(
                path,
                vec![(M::GET, e(Oidc::Authorization)), (M::POST, e(Oidc::Authorization)), preflight.clone()],
            );
        }
        for path in [paths::TOKEN, "/oauth/token"] {
            self.add(path, vec![(M::POST, e(Oidc::Token)), preflight.clone()]);
        }
        for path in [paths::USERINFO, "/oauth/userinfo"] {
            self.add(path, vec![(M::GET, e(Oidc::UserInfo)), (M::POST, e(Oidc::UserInfo)), preflight.clone()]);
        }
        self.add(paths::PAR, vec![(M::POST, e(Oidc::PushedAuthorization)), preflight.clone()]);
        self.add(paths::DEVICE_AUTHORIZATION, vec![(M::POST, e(Oidc::DeviceAuthorization)), preflight.clone()]);
        self.add(paths::INTROSPECTION, vec![(M::POST, e(Oidc::Introspection)), preflight.clone()]);
        self.add(paths::REVOCATION, vec![(M::POST, e(Oidc::Revocation)), preflight]);
        self.add(paths::END_SESSION, vec![(M::GET, e(Oidc::EndSession)), (M::POST, e(Oidc::EndSession))]);
        self.add_pages(&[
            (paths::CONSENT, Some(Page::ConsentForm), Some(Page::Consent)),
            (paths::DEVICE_VERIFICATION, Some(Page::DeviceForm), Some(Page::Device)),
        ]);
        self.add_pages(&[("/admin/clients", Some(Page::AdminClients), None)]);
    }

    /// Pages as (path, shown on GET and HEAD, submitted by POST).
    fn add_pages(&mut self, pages: &[(&str, Option<Page>, Option<Page>)]) {
        for (path, show, submit) in pages {
            let mut handlers = show.map(|p| get_head(Endpoint::Page(p))).unwrap_or_default();
            if let Some(p) = submit {
                handlers.push((M::POST, Endpoint::Page(*p)));
            }
            self.add(path, handlers);
        }
    }

    /// The authorization endpoints: ForwardAuth and AuthRequest answer GET and HEAD;
    /// ExtAuthz and Legacy answer any method, also on the paths below them. ExtAuthzGRPC
    /// has no HTTP route (the server hands its gRPC calls to [`crate::server::grpc`]).
    fn authz(&mut self, config: &Configuration) {
        for (i, endpoint) in crate::authz::endpoints(config).iter().enumerate() {
            if endpoint.implementation.is_grpc() {
                continue;
            }
            let handlers: Vec<_> = if endpoint.any_method() {
                ANY.iter().map(|m| (m.clone(), Endpoint::Authz(i))).collect()
            } else {
                get_head(Endpoint::Authz(i))
            };
            if endpoint.any_method() {
                self.prefixes.push(Route { path: format!("{}/", endpoint.path), handlers: handlers.clone() });
            }
            self.add(&endpoint.path, handlers);
        }
    }

    fn api(&mut self, path: &str, handlers: &[(Method, Api)]) {
        self.add(path, handlers.iter().map(|(m, a)| (m.clone(), Endpoint::Api(*a))).collect());
    }

    /// A route with path parameters, e.g. `/api/things/{id}` or `/auth/{token}/begin`:
    /// answered for any non-empty segment in their places, listed under its template.
    fn api_param(&mut self, template: &str, handlers: &[(Method, Api)]) {
        self.param(template, handlers.iter().map(|(m, a)| (m.clone(), Endpoint::Api(*a))).collect());
    }

    fn param(&mut self, template: &str, handlers: Vec<(Method, Endpoint)>) {
        let segments = template_segments(template);
        self.params.push((segments, Route { path: template.to_string(), handlers }));
        // More literal segments first: `/bans/ip/{ip}` before `/bans/{username}`.
        let literals = |s: &[Segment]| s.iter().filter(|s| matches!(s, Segment::Literal(_))).count();
        self.params.sort_by_key(|(template, _)| std::cmp::Reverse(literals(template)));
    }

    fn add(&mut self, path: &str, handlers: Vec<(Method, Endpoint)>) {
        let previous = self.routes.insert(path.to_string(), Route { path: path.to_string(), handlers });
        debug_assert!(previous.is_none(), "route {path} declared twice");
    }

    /// Whether `path` is one of the portal's pages (what a dedicated auth host keeps).
    pub fn is_page(&self, path: &str) -> bool {
        self.find(path).and_then(|r| r.endpoint(&Method::GET)).is_some_and(|e| matches!(e, Endpoint::Page(_)))
    }

    /// The route for `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes
            .get(path)
            .or_else(|| {
                self.params.iter().find(|(template, _)| template_matches(template, path)).map(|(_, route)| route)
            })
            .or_else(|| self.prefixes.iter().find(|r| path.starts_with(r.path.as_str())))
    }

    /// Every route, sorted by path (used to check the OpenAPI spec against the server).
    pub fn routes(&self) -> Vec<&Route> {
        let mut all: Vec<_> = self.routes.values().chain(self.params.iter().map(|(_, r)| r)).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}

fn get_head(endpoint: Endpoint) -> Vec<(Method, Endpoint)> {
    vec![(M::GET, endpoint), (M::HEAD, endpoint)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let config: Configuration = serde_yaml::from_str(
            "session: {cookies: [{domain: example.com, authelia_url: 'https://auth.example.com'}]}\n\
             webauthn: {enable_passkey_login: true}\nemail_otp: {enable: true}\n",
        )
        .unwrap();
        Router::new(&config)
    }

    #[test]
    fn each_method_has_its_own_handler() {
        let r = router();
        let totp = r.find("/api/secondfactor/totp").unwrap();
        assert_eq!(totp.endpoint(&M::GET), Some(Endpoint::Api(Api::TotpDescribe)));
        assert_eq!(totp.endpoint(&M::POST), Some(Endpoint::Api(Api::TotpSignIn)));
        assert_eq!(totp.endpoint(&M::DELETE), Some(Endpoint::Api(Api::TotpRemove)));
        assert_eq!(totp.endpoint(&M::PUT), None, "an undeclared method reaches no handler");
        assert_eq!(totp.methods().map(Method::as_str).collect::<Vec<_>>(), ["GET", "POST", "DELETE"]);
        let key = r.find("/api/secondfactor/webauthn/credential/12").unwrap();
        assert_eq!(key.endpoint(&M::DELETE), Some(Endpoint::Api(Api::KeyDelete)));
        assert_eq!(key.path, "/api/secondfactor/webauthn/credential/{credentialID}");
        assert!(r.find("/api/secondfactor/webauthn/credential/").is_none_or(|r| r.path.ends_with("register")));
    }

    #[test]
    fn pages_show_on_get_and_submit_on_post() {
        let r = router();
        let login = r.find("/login").unwrap();
        assert_eq!(login.endpoint(&M::GET), Some(Endpoint::Page(Page::LoginForm)));
        assert_eq!(login.endpoint(&M::HEAD), Some(Endpoint::Page(Page::LoginForm)));
        assert_eq!(login.endpoint(&M::POST), Some(Endpoint::Page(Page::Login)));
        assert_eq!(r.find("/profile").unwrap().endpoint(&M::POST), None);
        assert_eq!(r.find("/static/css/x.css").unwrap().endpoint(&M::GET), Some(Endpoint::Static));
    }
}
