//! The login portal: server-rendered pages (minijinja templates in `web/templates`) for
//! login, second factors, password reset and the user's account, plus the static files.
//!
//! Pages work without JavaScript (forms post back, the server answers with a redirect or
//! the page again with the error inline); only WebAuthn ceremonies need script
//! (`/static/js/passkey.js`, which talks to the JSON API). Every form post must carry a
//! CSRF token bound to the session and come from the portal's own origin.
//!
//! The pages drive the JSON API's handlers in-process (no HTTP round trip): regulation,
//! elevation, single-use codes and session ID changes are enforced in one place for both.

mod assets;
mod csrf;
mod render;

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use minijinja::{Value, context};
use serde_json::json;

use crate::handlers::api::{self, ApiRequest};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Endpoint;
use crate::session::{AuthLevel, CookieSettings, LoadedSession};

pub use render::Renderer;

/// The result of an in-process call to the JSON API.
struct Outcome {
    status: StatusCode,
    body: serde_json::Value,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_success()
    }

    fn message(&self) -> String {
        self.body["message"].as_str().unwrap_or("The request failed.").to_string()
    }

    fn data(&self) -> &serde_json::Value {
        &self.body["data"]
    }

    fn redirect(&self) -> Option<String> {
        self.data()["redirect"].as_str().map(str::to_string)
    }
}

/// One portal request in progress.
struct Page<'a> {
    app: &'a App,
    request: &'a ApiRequest<'a>,
    lang: &'static str,
    settings: &'a CookieSettings,
    session: Option<LoadedSession>,
    /// The `Cookie` header as the next in-process API call should see it.
    cookies: String,
    /// `Set-Cookie` values for the response.
    set_cookies: Vec<String>,
    /// The pre-session CSRF cookie value.
    anonymous_binding: Option<String>,
    form: HashMap<String, String>,
    query: HashMap<String, String>,
}

/// Answers a portal path (everything outside `/api` that the router sends here).
pub async fn handle(app: &App, request: ApiRequest<'_>) -> HttpResponse {
    let path = request.path;
    if path.starts_with("/static/") {
        let inm = request.parts.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        return app.portal.assets.serve(path, inm).unwrap_or_else(not_found);
    }
    let mut page = match Page::open(app, &request).await {
        Ok(page) => page,
        Err(response) => return response,
    };
    if request.parts.method == Method::POST {
        if !csrf::same_origin(&request.parts.headers) {
            return page.refused();
        }
        let submitted = page.form.get("csrf").cloned().unwrap_or_default();
        if !csrf::valid(app.services.storage.cipher(), &submitted, &page.bindings()) {
            return page.refused();
        }
    }
    let response = page.route().await;
    page.finish(response)
}

fn not_found() -> HttpResponse {
    response::bytes(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 Not Found\n")
}

impl<'a> Page<'a> {
    async fn open(app: &'a App, request: &'a ApiRequest<'a>) -> Result<Page<'a>, HttpResponse> {
        let headers = &request.parts.headers;
        let lang = app.portal.language(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
        let current = match api::current(app, request).await? {
            Some(current) => current,
            None => {
                return Err(response::bytes(
                    StatusCode::FORBIDDEN,
                    "text/plain; charset=utf-8",
                    "403 Forbidden: this host is under no configured cookie domain\n",
                ));
            }
        };
        let cookies = request.cookies().unwrap_or_default();
        let anonymous_binding = cookie::Cookie::split_parse(cookies.as_str())
            .filter_map(Result::ok)
            .find(|c| c.name() == csrf::COOKIE && c.value().len() >= 32)
            .map(|c| c.value().to_string());
        let form = if request.parts.method == Method::POST {
            url::form_urlencoded::parse(&request.body).into_owned().collect()
        } else {
            HashMap::new()
        };
        let query = url::form_urlencoded::parse(request.parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
        Ok(Page {
            app,
            request,
            lang,
            settings: current.settings,
            session: current.session,
            cookies,
            set_cookies: Vec::new(),
            anonymous_binding,
            form,
            query,
        })
    }

    fn bindings(&self) -> Vec<String> {
        let mut b = Vec::new();
        if let Some(s) = &self.session {
            b.push(format!("s:{}", s.id.as_str()));
        }
        if let Some(a) = &self.anonymous_binding {
            b.push(format!("a:{a}"));
        }
        b
    }

    /// The token forms on this page carry: bound to the session when there is one, else
    /// to a pre-session cookie (created now if missing).
    fn csrf_token(&mut self) -> String {
        let binding = match (&self.session, &self.anonymous_binding) {
            (Some(s), _) => format!("s:{}", s.id.as_str()),
            (None, Some(a)) => format!("a:{a}"),
            (None, None) => {
                let value = crate::session::SessionId::generate().as_str().to_string();
                let mut c = cookie::Cookie::build((csrf::COOKIE, value.clone()))
                    .path("/")
                    .http_only(true)
                    .secure(self.settings.secure)
                    .same_site(cookie::SameSite::Strict)
                    .build();
                c.set_path(format!("{}/", self.app.base_path));
                self.set_cookies.push(c.to_string());
                self.anonymous_binding = Some(value.clone());
                format!("a:{value}")
            }
        };
        csrf::token(self.app.services.storage.cipher(), &binding)
    }

    fn level(&self) -> AuthLevel {
        self.session.as_ref().map_or(AuthLevel::Anonymous, |s| s.data.level())
    }

    fn field(&self, name: &str) -> String {
        self.form.get(name).cloned().unwrap_or_default()
    }

    /// The `rd` target (form field on POST, query on GET), if safe; otherwise empty.
    fn target(&self) -> String {
        let rd = self.form.get("rd").or_else(|| self.query.get("rd")).cloned().unwrap_or_default();
        if !rd.is_empty() && self.app.services.sessions.is_safe_redirect(&rd) { rd } else { String::new() }
    }

    fn base(&self) -> &str {
        &self.app.base_path
    }

    fn render(&mut self, status: StatusCode, template: &str, ctx: Value) -> HttpResponse {
        let csrf = self.csrf_token();
        let theme = match self.app.config.theme.as_str() {
            "" => "auto",
            t => t,
        };
        let ctx = context! { lang => self.lang, theme, base => self.base(), csrf, ..ctx };
        self.app.portal.page(status, template, ctx)
    }

    /// A page answering a refused form post (bad token or foreign origin).
    fn refused(&mut self) -> HttpResponse {
        let ctx = context! { title_key => "common.error_title", error => self.text("common.form_expired"), links => vec![link("/login", "login.title")] };
        let r = self.render(StatusCode::FORBIDDEN, "message.html", ctx);
        self.finish(r)
    }

    fn text(&self, key: &str) -> String {
        self.app.portal.text(self.lang, key)
    }

    fn redirect(&self, location: &str) -> HttpResponse {
        let status = if self.request.parts.method == Method::POST { StatusCode::SEE_OTHER } else { StatusCode::FOUND };
        let mut r = response::bytes(status, "text/plain; charset=utf-8", "");
        if let Ok(v) = HeaderValue::from_str(location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }

    fn local(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn with_rd(&self, path: &str) -> String {
        let rd = self.target();
        if rd.is_empty() {
            self.local(path)
        } else {
            let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &rd).finish();
            format!("{}?{q}", self.local(path))
        }
    }

    fn finish(&self, mut response: HttpResponse) -> HttpResponse {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// Calls a JSON API handler in-process with this request's cookies and client address.
    async fn api(&mut self, method: Method, endpoint: Endpoint, path: &str, body: serde_json::Value) -> Outcome {
        let mut builder = http::Request::builder().method(method).uri(self.request.parts.uri.clone());
        for (name, value) in &self.request.parts.headers {
            if name != header::COOKIE && name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                builder = builder.header(name, value);
            }
        }
        if !self.cookies.is_empty() {
            builder = builder.header(header::COOKIE, self.cookies.as_str());
        }
        let (parts, ()) = match builder.header(header::CONTENT_TYPE, "application/json").body(()) {
            Ok(r) => r.into_parts(),
            Err(_) => return Outcome { status: StatusCode::INTERNAL_SERVER_ERROR, body: json!({}) },
        };
        let bytes = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
        let call = ApiRequest { parts: &parts, body: bytes, remote: self.request.remote, path };
        let response = api::call(endpoint, self.app, call).await;
        let status = response.status();
        for value in response.headers().get_all(header::SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                self.adopt_cookie(text);
            }
        }
        let collected = http_body_util::BodyExt::collect(response.into_body()).await;
        let body = collected.ok().and_then(|c| serde_json::from_slice(&c.to_bytes()).ok()).unwrap_or(json!({}));
        Outcome { status, body }
    }

    /// Takes a session cookie set by an API call: forwarded to the browser, and used by
    /// the following calls and for the session of this page.
    fn adopt_cookie(&mut self, set_cookie: &str) {
        self.set_cookies.push(set_cookie.to_string());
        let Some(pair) = set_cookie.split(';').next() else { return };
        let name = pair.split('=').next().unwrap_or_default().trim().to_string();
        let mut kept: Vec<String> = self
            .cookies
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty() && c.split('=').next() != Some(name.as_str()))
            .map(str::to_string)
            .collect();
        let cleared = set_cookie.contains("Max-Age=0") || pair.trim().ends_with('=');
        if !cleared {
            kept.push(pair.trim().to_string());
        }
        self.cookies = kept.join("; ");
    }

    /// Reloads the session after API calls may have replaced it.
    async fn reload(&mut self) {
        let now = api::now();
        self.session = self.app.services.sessions.load(self.settings, Some(&self.cookies), now).await.ok().flatten();
    }

    async fn route(&mut self) -> HttpResponse {
        let path = self.request.path.trim_end_matches('/').to_string();
        let post = self.request.parts.method == Method::POST;
        match (path.as_str(), post) {
            ("", false) => {
                let q = self.request.parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                self.redirect(&format!("{}{q}", self.local("/login")))
            }
            ("/login" | "/login/passkey", false) => self.login_page(None).await,
            ("/login", true) => self.login().await,
            ("/login/totp", false) => self.second_factor_page("totp", None, None).await,
            ("/login/totp", true) => self.second_factor("totp").await,
            ("/login/totp/recovery", false) => self.second_factor_page("recovery", None, None).await,
            ("/login/totp/recovery", true) => self.second_factor("recovery").await,
            ("/login/otp", false) => self.second_factor_page("email", None, None).await,
            ("/login/otp", true) => self.second_factor("email").await,
            ("/login/webauthn", false) => self.second_factor_page("webauthn", None, None).await,
            ("/logout", false) => self.logout_page(),
            ("/logout", true) => self.logout().await,
            ("/forgot-password", false) => self.forgot_page(None, None),
            ("/forgot-password", true) => self.forgot().await,
            ("/reset-password", false) => self.reset_page(None),
            ("/reset-password", true) => self.reset().await,
            (p, _) if p == "/profile" || p.starts_with("/profile/") || p == "/register/passkey" => {
                if self.level() < AuthLevel::OneFactor {
                    return self.redirect(&self.local("/login"));
                }
                self.profile_route(p, post).await
            }
            _ => not_found(),
        }
    }

    // ------------------------------------------------------------ login

    async fn login_page(&mut self, error: Option<String>) -> HttpResponse {
        if error.is_none() {
            match self.level() {
                AuthLevel::TwoFactor => return self.go_to_target(None),
                AuthLevel::OneFactor if !self.target().is_empty() => return self.next_second_factor().await,
                _ => {}
            }
        }
        let rm = self.form.get("rm").or_else(|| self.query.get("rm")).cloned().unwrap_or_default();
        let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        let ctx = context! {
            rd => self.target(),
            rm,
            username => self.field("username"),
            passkeys => self.app.services.webauthn.passkey_login(),
            error,
        };
        self.render(status, "login.html", ctx)
    }

    async fn login(&mut self) -> HttpResponse {
        let body = json!({
            "username": self.field("username"),
            "password": self.field("password"),
            "keepMeLoggedIn": self.field("remember_me") == "1",
            "targetURL": self.target(),
            "requestMethod": self.field("rm"),
        });
        let outcome = self.api(Method::POST, Endpoint::FirstFactor, "/api/firstfactor", body).await;
        if !outcome.ok() {
            return self.login_page(Some(outcome.message())).await;
        }
        self.reload().await;
        match outcome.redirect() {
            Some(to) if !self.target().is_empty() => self.redirect(&to),
            _ => self.next_second_factor().await,
        }
    }

    /// After the password: the second-factor page for the user's method, or the target
    /// when the user has no second factor and none is required.
    async fn next_second_factor(&mut self) -> HttpResponse {
        let info = self.api(Method::GET, Endpoint::UserInfo, "/api/user/info", serde_json::Value::Null).await;
        let d = info.data().clone();
        let has = |m: &str| d[format!("has_{m}")].as_bool().unwrap_or(false);
        let preferred = d["method"].as_str().unwrap_or_default().to_string();
        let method = [preferred.as_str(), "totp", "webauthn", "email"]
            .into_iter()
            .find(|m| !m.is_empty() && has(m))
            .map(str::to_string);
        match method {
            Some(m) => {
                let page = match m.as_str() {
                    "webauthn" => "/login/webauthn",
                    "email" => "/login/otp",
                    _ => "/login/totp",
                };
                self.redirect(&self.with_rd(page))
            }
            None if self.target().is_empty() => self.go_to_target(None),
            None => self.second_factor_page("none", None, None).await,
        }
    }

    fn go_to_target(&self, from_api: Option<String>) -> HttpResponse {
        let target = from_api.filter(|t| !t.is_empty()).or_else(|| Some(self.target()).filter(|t| !t.is_empty()));
        match target {
            Some(t) => self.redirect(&t),
            None => self.redirect(&self.local("/profile")),
        }
    }

    async fn second_factor_page(&mut self, mode: &str, error: Option<String>, notice: Option<String>) -> HttpResponse {
        if self.level() < AuthLevel::OneFactor {
            return self.redirect(&self.with_rd("/login"));
        }
        let info = self.api(Method::GET, Endpoint::UserInfo, "/api/user/info", serde_json::Value::Null).await;
        let d = info.data().clone();
        let mut others = Vec::new();
        if mode != "totp" && d["has_totp"].as_bool().unwrap_or(false) {
            others.push(link(&self.with_rd("/login/totp").replacen(self.base(), "", 1), "second.use_totp"));
        }
        if mode != "recovery" && d["recovery_codes_remaining"].as_i64().unwrap_or(0) > 0 {
            others
                .push(link(&self.with_rd("/login/totp/recovery").replacen(self.base(), "", 1), "second.use_recovery"));
        }
        if mode != "webauthn" && d["has_webauthn"].as_bool().unwrap_or(false) {
            others.push(link(&self.with_rd("/login/webauthn").replacen(self.base(), "", 1), "second.use_webauthn"));
        }
        if mode != "email" && d["has_email"].as_bool().unwrap_or(false) {
            others.push(link(&self.with_rd("/login/otp").replacen(self.base(), "", 1), "second.use_email"));
        }
        let sent = self.session.as_ref().is_some_and(|s| s.data.email_code.is_some());
        let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        let ctx = context! { mode, rd => self.target(), others, sent, error, notice };
        self.render(status, "second_factor.html", ctx)
    }

    async fn second_factor(&mut self, mode: &str) -> HttpResponse {
        let code = self.field("code");
        let target = self.target();
        let outcome = match (mode, self.field("action").as_str()) {
            ("email", "send") => {
                let o = self.api(Method::PUT, Endpoint::EmailCode, "/api/secondfactor/email", json!({})).await;
                self.reload().await;
                let notice = o.ok().then(|| self.text("second.otp_sent"));
                let error = (!o.ok()).then(|| o.message());
                return self.second_factor_page("email", error, notice).await;
            }
            ("email", _) => {
                let body = json!({"token": code, "targetURL": target});
                self.api(Method::POST, Endpoint::EmailCode, "/api/secondfactor/email", body).await
            }
            ("recovery", _) => {
                let body = json!({"token": code, "targetURL": target});
                self.api(Method::POST, Endpoint::RecoveryCodes, "/api/secondfactor/recovery-codes", body).await
            }
            _ => {
                let body = json!({"token": code, "targetURL": target});
                self.api(Method::POST, Endpoint::Totp, "/api/secondfactor/totp", body).await
            }
        };
        if !outcome.ok() {
            self.reload().await;
            return self.second_factor_page(mode, Some(outcome.message()), None).await;
        }
        self.go_to_target(outcome.redirect())
    }

    // ------------------------------------------------------------ logout, reset

    fn logout_page(&mut self) -> HttpResponse {
        let ctx = context! {
            title_key => "logout.title",
            confirm_action => "/logout",
            confirm_text => "logout.confirm",
            confirm_button => "logout.submit",
            confirm_class => "",
            links => vec![link("/profile", "common.cancel")],
        };
        self.render(StatusCode::OK, "message.html", ctx)
    }

    async fn logout(&mut self) -> HttpResponse {
        self.api(Method::POST, Endpoint::Logout, "/api/logout", json!({})).await;
        self.session = None;
        let ctx = context! { title_key => "logout.title", notice => self.text("logout.done"), links => vec![link("/login", "login.title")] };
        self.render(StatusCode::OK, "message.html", ctx)
    }

    fn forgot_page(&mut self, notice: Option<String>, error: Option<String>) -> HttpResponse {
        let ctx = context! {
            title_key => "forgot.title",
            intro => "forgot.intro",
            action => "/forgot-password",
            fields => vec![field("username", "login.username", "text", "username")],
            hidden => Vec::<Value>::new(),
            submit => "forgot.submit",
            links => vec![link("/login", "login.title")],
            notice,
            error,
        };
        self.render(StatusCode::OK, "form.html", ctx)
    }

    async fn forgot(&mut self) -> HttpResponse {
        let body = json!({"username": self.field("username")});
        let o = self.api(Method::POST, Endpoint::ResetStart, "/api/reset-password/identity/start", body).await;
        if o.ok() {
            let notice = self.text("forgot.sent");
            self.forgot_page(Some(notice), None)
        } else {
            self.forgot_page(None, Some(o.message()))
        }
    }

    fn reset_page(&mut self, error: Option<String>) -> HttpResponse {
        let token = self.form.get("token").or_else(|| self.query.get("token")).cloned().unwrap_or_default();
        let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        let ctx = context! {
            title_key => "reset.title",
            action => "/reset-password",
            fields => vec![
                field("password", "reset.password", "password", "new-password"),
                field("password_repeat", "reset.confirm", "password", "new-password"),
            ],
            hidden => vec![context! { name => "token", value => token }],
            submit => "reset.submit",
            links => vec![link("/login", "login.title")],
            error,
        };
        self.render(status, "form.html", ctx)
    }

    async fn reset(&mut self) -> HttpResponse {
        let (password, repeat) = (self.field("password"), self.field("password_repeat"));
        if password != repeat {
            let e = self.text("reset.mismatch");
            return self.reset_page(Some(e));
        }
        let token = self.field("token");
        let o = self
            .api(Method::POST, Endpoint::ResetFinish, "/api/reset-password/identity/finish", json!({"token": token}))
            .await;
        if !o.ok() {
            return self.reset_page(Some(o.message()));
        }
        let o =
            self.api(Method::POST, Endpoint::ResetPassword, "/api/reset-password", json!({"password": password})).await;
        if !o.ok() {
            // The link is spent; the user starts over with a new one.
            return self.forgot_page(None, Some(o.message()));
        }
        self.session = None;
        let ctx = context! { title_key => "reset.title", notice => self.text("reset.done"), links => vec![link("/login", "login.title")] };
        self.render(StatusCode::OK, "message.html", ctx)
    }

    // ------------------------------------------------------------ account

    async fn profile_route(&mut self, path: &str, post: bool) -> HttpResponse {
        match (path, post) {
            ("/profile", false) => self.profile(None, None).await,
            ("/profile/password", false) => self.password_page(None),
            ("/profile/password", true) => self.change_password().await,
            ("/profile/elevate", false) => self.elevate_page(None, None),
            ("/profile/elevate", true) => self.elevate().await,
            ("/profile/totp/enroll", false) => self.totp_enroll_page(None).await,
            ("/profile/totp/enroll", true) => self.totp_enroll().await,
            ("/profile/totp/recovery-codes", false) => self.recovery_page(None, None).await,
            ("/profile/totp/recovery-codes", true) => self.recovery_regenerate().await,
            ("/profile/totp/disable", false) => self.totp_disable_page(None),
            ("/profile/totp/disable", true) => self.totp_disable().await,
            ("/profile/webauthn", true) => self.webauthn_change().await,
            ("/profile/sign-out-everywhere", true) => self.sign_out_everywhere().await,
            ("/register/passkey", false) => {
                if !self.elevated() {
                    return self.need_elevation("/register/passkey");
                }
                self.render(StatusCode::OK, "register_passkey.html", context! {})
            }
            _ => not_found(),
        }
    }

    fn elevated(&self) -> bool {
        self.session.as_ref().is_some_and(|s| api::guard::is_elevated(self.app, &s.data, api::now()))
    }

    fn need_elevation(&self, next: &str) -> HttpResponse {
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
        self.redirect(&format!("{}?{q}", self.local("/profile/elevate")))
    }

    async fn profile(&mut self, notice: Option<String>, error: Option<String>) -> HttpResponse {
        let info = self.api(Method::GET, Endpoint::UserInfo, "/api/user/info", serde_json::Value::Null).await;
        let keys = self
            .api(
                Method::GET,
                Endpoint::WebAuthnCredentials,
                "/api/secondfactor/webauthn/credentials",
                serde_json::Value::Null,
            )
            .await;
        let d = info.data().clone();
        let (username, display_name) =
            self.session.as_ref().map(|s| (s.data.username.clone(), s.data.display_name.clone())).unwrap_or_default();
        let ctx = context! {
            username,
            display_name,
            has_totp => d["has_totp"].as_bool().unwrap_or(false),
            recovery_left => d["recovery_codes_remaining"].as_i64().unwrap_or(0),
            keys => minijinja::value::Serde(keys.data().clone()),
            notice,
            error,
        };
        self.render(StatusCode::OK, "profile.html", ctx)
    }

    fn password_page(&mut self, error: Option<String>) -> HttpResponse {
        let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
        let ctx = context! {
            title_key => "password.title",
            action => "/profile/password",
            fields => vec![
                field("old_password", "password.old", "password", "current-password"),
                field("new_password", "password.new", "password", "new-password"),
                field("new_password_repeat", "password.repeat", "password", "new-password"),
            ],
            hidden => Vec::<Value>::new(),
            submit => "password.submit",
            links => vec![link("/profile", "common.cancel")],
            error,
        };
        self.render(status, "form.html", ctx)
    }

    async fn change_password(&mut self) -> HttpResponse {
        let (new, repeat) = (self.field("new_password"), self.field("new_password_repeat"));
        if new != repeat {
            let e = self.text("reset.mismatch");
            return self.password_page(Some(e));
        }
        let body = json!({"old_password": self.field("old_password"), "new_password": new});
        let o = self.api(Method::POST, Endpoint::ChangePassword, "/api/change-password", body).await;
        if !o.ok() {
            return self.password_page(Some(o.message()));
        }
        let notice = self.text("password.done");
        self.profile(Some(notice), None).await
    }

    fn elevate_page(&mut self, notice: Option<String>, error: Option<String>) -> HttpResponse {
        let next = self.form.get("next").or_else(|| self.query.get("next")).cloned().unwrap_or_default();
        let pending = self.session.as_ref().is_some_and(|s| s.data.elevation_code.is_some());
        let hidden = vec![context! { name => "next", value => next }];
        let ctx = if pending {
            context! {
                title_key => "elevate.title",
                action => "/profile/elevate",
                fields => vec![field("otc", "elevate.code", "text", "one-time-code")],
                hidden,
                submit => "elevate.submit",
                secondary_action => "/profile/elevate",
                secondary_submit => "elevate.send",
                links => vec![link("/profile", "common.cancel")],
                notice,
                error,
            }
        } else {
            context! {
                title_key => "elevate.title",
                intro => "elevate.intro",
                action => "/profile/elevate",
                fields => Vec::<Value>::new(),
                hidden,
                submit => "elevate.send",
                links => vec![link("/profile", "common.cancel")],
                notice,
                error,
            }
        };
        self.render(StatusCode::OK, "form.html", ctx)
    }

    async fn elevate(&mut self) -> HttpResponse {
        let code = self.field("otc");
        if code.is_empty() {
            let o = self
                .api(Method::POST, Endpoint::Elevation, "/api/user/session/elevation", serde_json::Value::Null)
                .await;
            self.reload().await;
            return if o.ok() {
                let n = self.text("second.otp_sent");
                self.elevate_page(Some(n), None)
            } else {
                self.elevate_page(None, Some(o.message()))
            };
        }
        let o = self.api(Method::PUT, Endpoint::Elevation, "/api/user/session/elevation", json!({"otc": code})).await;
        self.reload().await;
        if !o.ok() {
            return self.elevate_page(None, Some(o.message()));
        }
        let next = self.field("next");
        let safe_next = if next.starts_with('/') && !next.starts_with("//") { next } else { "/profile".to_string() };
        self.redirect(&self.local(&safe_next))
    }

    async fn totp_enroll_page(&mut self, error: Option<String>) -> HttpResponse {
        if !self.elevated() {
            return self.need_elevation("/profile/totp/enroll");
        }
        let o = self.api(Method::PUT, Endpoint::TotpRegister, "/api/secondfactor/totp/register", json!({})).await;
        if !o.ok() {
            let message = o.message();
            return self.profile(None, Some(message)).await;
        }
        let d = o.data().clone();
        let ctx = context! {
            secret => d["base32_secret"].as_str().unwrap_or_default(),
            qr_code => d["qr_code"].as_str().unwrap_or_default(),
            error,
        };
        self.render(StatusCode::OK, "totp_enroll.html", ctx)
    }

    async fn totp_enroll(&mut self) -> HttpResponse {
        let o = self
            .api(
                Method::POST,
                Endpoint::TotpRegister,
                "/api/secondfactor/totp/register",
                json!({"token": self.field("code")}),
            )
            .await;
        if !o.ok() {
            // Show the same secret again: it waits in the session until confirmed.
            let pending = self.session.as_ref().and_then(|s| s.data.pending_totp.clone());
            let Some(pending) = pending else { return self.totp_enroll_page(Some(o.message())).await };
            let account = self.session.as_ref().map(|s| s.data.username.clone()).unwrap_or_default();
            let (_, qr) = self.app.services.totp.enrollment_links(&pending, &account).unwrap_or_default();
            let ctx = context! { secret => pending.secret, qr_code => qr, error => o.message() };
            return self.render(StatusCode::BAD_REQUEST, "totp_enroll.html", ctx);
        }
        self.show_codes(o.data()["recovery_codes"].clone())
    }

    fn show_codes(&mut self, codes: serde_json::Value) -> HttpResponse {
        let list: Vec<String> = codes
            .as_array()
            .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let download = format!("Portcullis recovery codes\n\n{}\n", list.join("\n"));
        self.render(StatusCode::OK, "recovery_codes.html", context! { codes => list, download })
    }

    async fn recovery_page(&mut self, notice: Option<String>, error: Option<String>) -> HttpResponse {
        let o = self
            .api(Method::GET, Endpoint::RecoveryCodes, "/api/secondfactor/recovery-codes", serde_json::Value::Null)
            .await;
        let left = o.data()["remaining"].as_i64().unwrap_or(0);
        self.render(StatusCode::OK, "recovery_codes.html", context! { left, notice, error })
    }

    async fn recovery_regenerate(&mut self) -> HttpResponse {
        if !self.elevated() {
            return self.need_elevation("/profile/totp/recovery-codes");
        }
        let o = self
            .api(Method::PUT, Endpoint::RecoveryCodes, "/api/secondfactor/recovery-codes", serde_json::Value::Null)
            .await;
        if !o.ok() {
            return self.recovery_page(None, Some(o.message())).await;
        }
        self.show_codes(o.data()["recovery_codes"].clone())
    }

    fn totp_disable_page(&mut self, error: Option<String>) -> HttpResponse {
        if !self.elevated() {
            return self.need_elevation("/profile/totp/disable");
        }
        let ctx = context! {
            title_key => "totp.disable_title",
            confirm_action => "/profile/totp/disable",
            confirm_text => "totp.disable_confirm",
            confirm_button => "totp.disable_submit",
            confirm_class => "danger",
            links => vec![link("/profile", "common.cancel")],
            error,
        };
        self.render(StatusCode::OK, "message.html", ctx)
    }

    async fn totp_disable(&mut self) -> HttpResponse {
        let o = self.api(Method::DELETE, Endpoint::Totp, "/api/secondfactor/totp", serde_json::Value::Null).await;
        if !o.ok() {
            if o.status == StatusCode::FORBIDDEN {
                return self.need_elevation("/profile/totp/disable");
            }
            return self.totp_disable_page(Some(o.message()));
        }
        self.redirect(&self.local("/profile"))
    }

    async fn webauthn_change(&mut self) -> HttpResponse {
        if !self.elevated() {
            return self.need_elevation("/profile");
        }
        let id: i64 = self.field("id").parse().unwrap_or(-1);
        let path = format!("/api/secondfactor/webauthn/credential/{id}");
        let o = if self.field("action") == "delete" {
            self.api(Method::DELETE, Endpoint::WebAuthnCredential, &path, serde_json::Value::Null).await
        } else {
            let body = json!({"description": self.field("description")});
            self.api(Method::PUT, Endpoint::WebAuthnCredential, &path, body).await
        };
        if o.ok() { self.redirect(&self.local("/profile")) } else { self.profile(None, Some(o.message())).await }
    }

    async fn sign_out_everywhere(&mut self) -> HttpResponse {
        let Some(session) = self.session.take() else { return self.redirect(&self.local("/login")) };
        let sessions = &self.app.services.sessions;
        if let Err(e) = sessions.end_all_for(&session.data.username, None).await {
            tracing::error!(error = %e, "cannot end sessions");
            return response::bytes(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "503 Service Unavailable\n",
            );
        }
        tracing::info!(username = %session.data.username, "signed out everywhere");
        self.set_cookies.push(self.settings.clear_cookie());
        self.redirect(&self.local("/login"))
    }
}

fn link(href: &str, label: &str) -> Value {
    context! { href, label }
}

fn field(name: &str, label: &str, kind: &str, autocomplete: &str) -> Value {
    let inputmode = if autocomplete == "one-time-code" { Some("text") } else { None };
    context! { name, label, type => kind, autocomplete, inputmode }
}
