//! Who is asking: the cookie domain a request came in on, its session, and its client
//! address. Operations read the session from here and change it through here, so that an
//! adapter sending several operations in one request (the portal logs in, then reads the
//! account's methods) sees each change, and knows which `Set-Cookie` values to send.

use std::net::IpAddr;
use std::sync::Arc;

use super::audit::Context;
use super::{Error, Result};
use crate::clock::now;
use crate::server::App;
use crate::session::{AuthLevel, CookieSettings, LoadedSession, SessionData};

/// The caller of an operation.
pub struct Caller<'a> {
    settings: &'a CookieSettings,
    session: Option<LoadedSession>,
    context: Context,
    cookie_header: String,
    set_cookies: Vec<String>,
    /// Authenticated by an account API bearer token, not a cookie: the session lives
    /// only for this request (changes to it are never stored or sent as cookies).
    bearer: bool,
}

impl<'a> Caller<'a> {
    /// The caller of a request addressed to `host` with `cookie_header`, from `context`
    /// (the client address with trusted proxies applied, User-Agent, request ID). Fails
    /// when the host is under no configured cookie domain, or the session store cannot be
    /// read (fail closed).
    pub async fn open(app: &'a App, host: &str, cookie_header: Option<&str>, context: Context) -> Result<Self> {
        let sessions = &app.services.sessions;
        let settings = sessions.cookie_for_host(host).ok_or(Error::NoCookieDomain)?;
        let session = sessions.load(settings, cookie_header, now()).await?;
        let cookie_header = cookie_header.unwrap_or_default().to_string();
        Ok(Self { settings, session, context, cookie_header, set_cookies: Vec::new(), bearer: false })
    }

    /// The caller of an account API request to `host`: `data` (from a bearer token, or
    /// none before logging in) held for this request only. Cookies are not read, so a
    /// request a browser sends by itself carries no authority here.
    pub fn for_bearer(app: &'a App, host: &str, data: Option<SessionData>, context: Context) -> Result<Self> {
        let settings = app.services.sessions.cookie_for_host(host).ok_or(Error::NoCookieDomain)?;
        let session =
            data.map(|data| LoadedSession { id: crate::session::SessionId::generate(), data: Arc::new(data) });
        Ok(Self { settings, session, context, cookie_header: String::new(), set_cookies: Vec::new(), bearer: true })
    }

    /// Whether the caller came with a bearer token rather than a session cookie.
    pub fn is_bearer(&self) -> bool {
        self.bearer
    }

    /// The cookie domain's settings.
    pub fn settings(&self) -> &'a CookieSettings {
        self.settings
    }

    /// The session, if the request carries a valid one.
    pub fn session(&self) -> Option<&LoadedSession> {
        self.session.as_ref()
    }

    /// The session's contents, if any.
    pub fn data(&self) -> Option<&SessionData> {
        self.session.as_ref().map(|s| &*s.data)
    }

    /// The session's authentication level (anonymous without one).
    pub fn level(&self) -> AuthLevel {
        self.data().map_or(AuthLevel::Anonymous, SessionData::level)
    }

    /// The session's contents when it is at least at `level`; [`Error::Forbidden`] otherwise.
    pub fn require(&self, level: AuthLevel) -> Result<&SessionData> {
        self.data().filter(|d| d.level() >= level && level > AuthLevel::Anonymous).ok_or(Error::Forbidden)
    }

    /// The client address.
    pub fn ip(&self) -> Option<IpAddr> {
        self.context.ip
    }

    /// The client address as the authentication log records it (empty when unknown).
    pub fn ip_text(&self) -> String {
        self.context.ip_text()
    }

    /// Where the request came from (address, User-Agent, request ID).
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The logged-in user's name (empty when anonymous), the actor of audit events.
    pub fn username(&self) -> &str {
        self.data().map_or("", |d| d.username.as_str())
    }

    /// Replaces the session with `data` under a new ID (the old one is deleted). Every
    /// change of privilege goes through here, so that an ID seen before is worthless after.
    pub async fn replace(&mut self, app: &App, mut data: SessionData) -> Result<()> {
        // Where the session came from, for its user's session list (the first sign-in's,
        // kept through later privilege changes).
        if data.ip.is_empty() {
            data.ip = self.context.ip_text();
        }
        if data.user_agent.is_empty() {
            data.user_agent = self.context.user_agent.chars().take(256).collect();
        }
        if self.bearer {
            self.session = Some(LoadedSession { id: crate::session::SessionId::generate(), data: Arc::new(data) });
            return Ok(());
        }
        let previous = self.session.as_ref().map(|s| &s.id);
        let (session, cookie) = app.services.sessions.regenerate(self.settings, previous, data, now()).await?;
        self.session = Some(session);
        self.set_cookies.push(cookie);
        Ok(())
    }

    /// Saves `data` under the session's ID: for changes that raise no privilege (pending
    /// ceremonies, a consumed challenge). Never creates a session: anonymous requests
    /// leave no state on the server (they could be sent by the million).
    pub async fn save(&mut self, app: &App, data: SessionData) -> Result<()> {
        let session = self.session.as_ref().ok_or(Error::Forbidden)?;
        if !self.bearer {
            app.services.sessions.update(self.settings, session, data.clone(), now()).await?;
        }
        self.session = Some(LoadedSession { id: session.id.clone(), data: Arc::new(data) });
        Ok(())
    }

    /// The value of the request's cookie `name`, if sent.
    pub fn cookie(&self, name: &str) -> Option<String> {
        cookie::Cookie::split_parse(self.cookie_header.as_str())
            .filter_map(std::result::Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Sends a cookie other than the session's (a `Set-Cookie` value).
    pub fn set_cookie(&mut self, set_cookie: String) {
        self.set_cookies.push(set_cookie);
    }

    /// Ends the session, if any, and clears its cookie.
    pub async fn end(&mut self, app: &App) -> Result<()> {
        if self.bearer {
            self.session = None;
            return Ok(());
        }
        if let Some(session) = self.session.take() {
            app.services.sessions.end(self.settings, &session.id).await?;
        }
        self.set_cookies.push(self.settings.clear_cookie());
        Ok(())
    }

    /// Forgets the session without touching the store (it was ended elsewhere, e.g. by
    /// signing out everywhere).
    pub fn forget(&mut self) {
        self.session = None;
        if self.bearer {
            return;
        }
        self.set_cookies.push(self.settings.clear_cookie());
    }

    /// The `Set-Cookie` values the response must carry, taken out.
    pub fn take_set_cookies(&mut self) -> Vec<String> {
        std::mem::take(&mut self.set_cookies)
    }
}
