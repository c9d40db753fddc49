//! One portal request in progress: its language, caller, form fields and query, the CSRF
//! token its forms carry, and the plumbing every page shares (rendering, redirects, the
//! error page, the cookies to send).

use std::collections::HashMap;

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use minijinja::{Value, context};

use super::csrf;
use crate::flows::{Caller, Error};
use crate::handlers::Request;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;

/// A portal request.
pub struct Visit<'a> {
    pub app: &'a App,
    pub request: &'a Request<'a>,
    pub lang: &'static str,
    pub caller: Caller<'a>,
    /// The pre-session CSRF cookie value.
    anonymous_binding: Option<String>,
    /// `Set-Cookie` values of the page itself (the CSRF cookie).
    set_cookies: Vec<String>,
    form: HashMap<String, String>,
    query: HashMap<String, String>,
}

impl<'a> Visit<'a> {
    /// Opens the request: its caller (a host under no cookie domain gets a 403 page, a
    /// session store that cannot be read a 503 page), form and query.
    pub async fn open(app: &'a App, request: &'a Request<'a>) -> Result<Visit<'a>, HttpResponse> {
        let headers = &request.parts.headers;
        let lang = crate::i18n::negotiate(headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()));
        let caller = match request.caller(app).await {
            Ok(caller) => caller,
            Err(Error::NoCookieDomain) => {
                return Err(response::bytes(
                    StatusCode::FORBIDDEN,
                    "text/plain; charset=utf-8",
                    "403 Forbidden: this host is under no configured cookie domain\n",
                ));
            }
            Err(e) => {
                e.log();
                return Err(response::bytes(e.status(), "text/plain; charset=utf-8", e.text(lang) + "\n"));
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
        Ok(Visit { app, request, lang, caller, anonymous_binding, set_cookies: Vec::new(), form, query })
    }

    /// Whether a form post may proceed: from the portal's own origin, with a token bound
    /// to this session (or the pre-session cookie).
    pub fn post_allowed(&self) -> bool {
        let submitted = self.form.get("csrf").map(String::as_str).unwrap_or_default();
        crate::handlers::origin::same_origin(&self.request.parts.headers, self.request.host())
            && csrf::valid(self.app.services.storage.cipher(), submitted, &self.bindings())
    }

    fn bindings(&self) -> Vec<String> {
        let mut b = Vec::new();
        if let Some(s) = self.caller.session() {
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
        let binding = match (self.caller.session(), &self.anonymous_binding) {
            (Some(s), _) => format!("s:{}", s.id.as_str()),
            (None, Some(a)) => format!("a:{a}"),
            (None, None) => {
                let value = crate::session::SessionId::generate().as_str().to_string();
                let mut c = cookie::Cookie::build((csrf::COOKIE, value.clone()))
                    .path("/")
                    .http_only(true)
                    .secure(self.caller.settings().secure)
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

    /// The session's level.
    pub fn level(&self) -> AuthLevel {
        self.caller.level()
    }

    /// A submitted form field (empty when absent).
    pub fn field(&self, name: &str) -> String {
        self.form.get(name).cloned().unwrap_or_default()
    }

    /// A form field on POST, else the query parameter (empty when absent).
    pub fn param(&self, name: &str) -> String {
        self.form.get(name).or_else(|| self.query.get(name)).cloned().unwrap_or_default()
    }

    /// The `rd` target if it is safe; otherwise empty.
    pub fn target(&self) -> String {
        let rd = self.param("rd");
        if !rd.is_empty() && self.app.services.sessions.is_safe_redirect(&rd) { rd } else { String::new() }
    }

    /// The target, when there is one.
    pub fn target_opt(&self) -> Option<String> {
        Some(self.target()).filter(|t| !t.is_empty())
    }

    /// The server's base path.
    pub fn base(&self) -> &str {
        &self.app.base_path
    }

    /// A path of the portal, under the base path.
    pub fn local(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// A path of the portal carrying the safe `rd` target along.
    pub fn with_rd(&self, path: &str) -> String {
        match self.target_opt() {
            None => self.local(path),
            Some(rd) => {
                let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &rd).finish();
                format!("{}?{q}", self.local(path))
            }
        }
    }

    /// Renders `template` with the page's common values (language, theme, base, CSRF).
    pub fn render(&mut self, status: StatusCode, template: &str, ctx: Value) -> HttpResponse {
        let csrf = self.csrf_token();
        let ctx = context! { lang => self.lang, theme => self.theme(), base => self.base(), csrf, ..ctx };
        self.app.portal.page(status, template, ctx)
    }

    fn theme(&self) -> &str {
        match self.app.config.theme.as_str() {
            "" => "auto",
            t => t,
        }
    }

    /// A translated text.
    pub fn text(&self, key: &str) -> String {
        crate::i18n::text(self.lang, key)
    }

    /// A redirect: 303 after a form post, 302 otherwise. A form post on its way to an
    /// OpenID Connect authorization leaves through [`Visit::leave`].
    pub fn redirect(&self, location: &str) -> HttpResponse {
        if self.request.parts.method == Method::POST && self.is_authorization(location) {
            return self.leave(location);
        }
        let status = if self.request.parts.method == Method::POST { StatusCode::SEE_OTHER } else { StatusCode::FOUND };
        let mut r = response::bytes(status, "text/plain; charset=utf-8", "");
        if let Ok(v) = HeaderValue::from_str(location) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }

    /// Sends the browser on to a relying party. After a form post, browsers check every
    /// redirect that follows against the page's `form-action`, up to the relying party's
    /// own redirects to wherever it likes; so a form post answers with a page that goes on
    /// by itself (a refresh is not a form submission), and a link for browsers that wait.
    pub fn leave(&self, location: &str) -> HttpResponse {
        if self.request.parts.method != Method::POST {
            let status = StatusCode::FOUND;
            let mut r = response::bytes(status, "text/plain; charset=utf-8", "");
            if let Ok(v) = HeaderValue::from_str(location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        // No form on this page: no CSRF token to mint.
        let ctx = context! { lang => self.lang, theme => self.theme(), base => self.base(), location };
        self.app.portal.page(StatusCode::OK, "continue.html", ctx)
    }

    fn is_authorization(&self, location: &str) -> bool {
        let path = url::Url::parse(location).map(|u| u.path().to_string()).unwrap_or_else(|_| location.to_string());
        let own = |endpoint: &str| path == format!("{}{endpoint}", self.base());
        own(crate::oidc::paths::AUTHORIZATION) || own("/oauth/authorize")
    }

    /// The error page for an operation that could not be done at all (a service is down,
    /// the session is gone): its text, its status, and a way back.
    pub fn error_page(&mut self, error: &Error) -> HttpResponse {
        error.log();
        let back = if self.level() >= AuthLevel::OneFactor {
            link("/profile", "common.back_to_profile")
        } else {
            link("/login", "login.title")
        };
        let ctx = context! { title_key => "common.error_title", error => error.text(self.lang), links => vec![back] };
        self.render(error.status(), "message.html", ctx)
    }

    /// The page answering a refused form post (bad token or foreign origin).
    pub fn refused(&mut self) -> HttpResponse {
        let ctx = context! { title_key => "common.error_title", error => self.text("common.form_expired"), links => vec![link("/login", "login.title")] };
        self.render(StatusCode::FORBIDDEN, "message.html", ctx)
    }

    /// Adds the cookies of the page and of the operations it ran.
    pub fn finish(&mut self, mut response: HttpResponse) -> HttpResponse {
        let operations = self.caller.take_set_cookies();
        for c in operations.iter().chain(&self.set_cookies) {
            if let Ok(v) = HeaderValue::from_str(c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

/// A link in a page's footer.
pub fn link(href: &str, label: &str) -> Value {
    context! { href, label }
}

/// A form field.
pub fn field(name: &str, label: &str, kind: &str, autocomplete: &str) -> Value {
    let inputmode = if autocomplete == "one-time-code" { Some("text") } else { None };
    context! { name, label, type => kind, autocomplete, inputmode }
}
