//! Authorization requests: parsing and checking one against its client (RFC 6749 §4.1,
//! OpenID Connect Core §3), and encoding the answer to the redirect URI (query, fragment
//! or form post) with `iss` (RFC 9207).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{Provider, pkce};

/// The prefix of a pushed request's `request_uri` (RFC 9126 §2.2).
pub const PAR_URN_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// A checked authorization request, as kept while the user logs in or consents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// `code`, `id_token`, `code id_token`, ...
    pub response_type: String,
    /// `query`, `fragment` or `form_post`.
    pub response_mode: String,
    /// Where the answer goes (registered, compared exactly).
    pub redirect_uri: String,
    /// The request named its redirect URI (rather than using the client's only one): the
    /// token request must then name it too (RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// The client's state, returned as is.
    pub state: String,
    /// The client's nonce, put in the ID token.
    pub nonce: String,
    /// PKCE challenge.
    pub code_challenge: String,
    /// PKCE method.
    pub code_challenge_method: String,
    /// `prompt` values.
    pub prompt: Vec<String>,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// When the request was made (Unix seconds).
    pub requested_at: i64,
}

impl AuthRequest {
    /// True when the response includes tokens from the authorization endpoint (implicit
    /// or hybrid flows).
    pub fn has(&self, part: &str) -> bool {
        self.response_type.split(' ').any(|p| p == part)
    }

    /// True when the request asks for `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// An RFC 6749 error code with its description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, ...
    pub code: &'static str,
    /// For the developer of the client.
    pub description: String,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self { code, description: description.into() }
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The client or its redirect URI cannot be trusted: shown on an error page, never
    /// redirected.
    Page(String),
    /// Sent back to the client's redirect URI.
    Redirect { to: Reply, error: OAuthError },
}

/// Where and how the answer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The client's redirect URI.
    pub redirect_uri: String,
    /// `query`, `fragment` or `form_post`.
    pub mode: String,
    /// The client's state.
    pub state: String,
}

impl Reply {
    /// The reply for `request`.
    pub fn of(request: &AuthRequest) -> Self {
        Self {
            redirect_uri: request.redirect_uri.clone(),
            mode: request.response_mode.clone(),
            state: request.state.clone(),
        }
    }

    /// The parameters of an error answer.
    pub fn error_params(&self, error: &OAuthError, issuer: &str) -> Vec<(String, String)> {
        let mut p = vec![("error".to_string(), error.code.to_string())];
        if !error.description.is_empty() {
            p.push(("error_description".into(), error.description.clone()));
        }
        self.finish(p, issuer)
    }

    /// `params` plus `state` and `iss`.
    pub fn finish(&self, mut params: Vec<(String, String)>, issuer: &str) -> Vec<(String, String)> {
        if !self.state.is_empty() {
            params.push(("state".into(), self.state.clone()));
        }
        params.push(("iss".into(), issuer.to_string()));
        params
    }

    /// The redirect URL carrying `params` (query or fragment); `None` for form posts.
    pub fn location(&self, params: &[(String, String)]) -> Option<String> {
        let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        match self.mode.as_str() {
            "form_post" => None,
            "fragment" => Some(format!("{}#{encoded}", self.redirect_uri)),
            _ => {
                let sep = if self.redirect_uri.contains('?') { '&' } else { '?' };
                Some(format!("{}{sep}{encoded}", self.redirect_uri))
            }
        }
    }
}

/// Checks the parameters of an authorization request against its client. `from_par`
/// says the parameters came from a pushed request.
pub fn parse(
    provider: &Provider,
    params: &HashMap<String, String>,
    from_par: bool,
    now: i64,
) -> Result<AuthRequest, Refusal> {
    let get = |k: &str| params.get(k).map(String::as_str).unwrap_or_default();
    let client_id = get("client_id");
    let Some(client) = provider.clients.get(client_id) else {
        return Err(Refusal::Page(if client_id.is_empty() {
            "The request names no client (client_id is missing).".into()
        } else {
            "The client is not registered with this provider.".into()
        }));
    };
    let redirect_uri = match get("redirect_uri") {
        "" if client.config.redirect_uris.as_slice().len() == 1 => client.config.redirect_uris.as_slice()[0].clone(),
        "" => return Err(Refusal::Page("The request has no redirect_uri.".into())),
        uri if client.redirect_uri_allowed(uri) => uri.to_string(),
        _ => return Err(Refusal::Page("The redirect_uri is not registered for this client.".into())),
    };
    let response_type = get("response_type").split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
    let implicit = response_type.split(' ').any(|p| p == "token" || p == "id_token");
    let default_mode = if implicit { "fragment" } else { "query" };
    let requested_mode = get("response_mode");
    let known_mode = matches!(requested_mode, "query" | "fragment" | "form_post");
    let response_mode = if known_mode { requested_mode } else { default_mode }.to_string();
    let to = Reply { redirect_uri: redirect_uri.clone(), mode: response_mode.clone(), state: get("state").to_string() };
    let refuse = |code: &'static str, description: &str| Refusal::Redirect {
        to: to.clone(),
        error: OAuthError::new(code, description),
    };
    if !requested_mode.is_empty() && !known_mode {
        return Err(refuse("invalid_request", "unsupported response_mode"));
    }
    if !client.response_mode_allowed(&response_mode) || (implicit && response_mode == "query") {
        return Err(refuse("invalid_request", "response_mode not allowed for this client and response_type"));
    }
    if params.contains_key("request") {
        return Err(refuse("request_not_supported", "request objects are not supported"));
    }
    if !from_par
        && (provider.config.require_pushed_authorization_requests
            || client.config.require_pushed_authorization_requests)
    {
        return Err(refuse("invalid_request", "this client must use pushed authorization requests"));
    }
    if response_type.is_empty() {
        return Err(refuse("invalid_request", "response_type is required"));
    }
    if !client.response_type_allowed(&response_type) {
        return Err(refuse("unsupported_response_type", "response_type not allowed for this client"));
    }
    let scopes: Vec<String> = get("scope").split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    if let Err(scope) = client.scopes_allowed(scopes.iter().map(String::as_str)) {
        return Err(refuse("invalid_scope", &format!("scope '{scope}' is not allowed for this client")));
    }
    let nonce = get("nonce").to_string();
    if response_type.split(' ').any(|p| p == "id_token") && nonce.is_empty() {
        return Err(refuse("invalid_request", "nonce is required when an ID token is returned from this endpoint"));
    }
    let (challenge, mut method) = (get("code_challenge").to_string(), get("code_challenge_method").to_string());
    if challenge.is_empty() {
        if provider.pkce_required(client) && response_type.split(' ').any(|p| p == "code") {
            return Err(refuse("invalid_request", "PKCE (code_challenge) is required for this client"));
        }
        method.clear();
    } else {
        if method.is_empty() {
            method = "plain".into();
        }
        if !provider.pkce_method_allowed(client, &method) {
            return Err(refuse("invalid_request", "code_challenge_method not allowed"));
        }
        if !pkce::valid_challenge(&challenge) {
            return Err(refuse("invalid_request", "malformed code_challenge"));
        }
    }
    let prompt: Vec<String> = get("prompt").split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
    if prompt.iter().any(|p| p == "none") && prompt.len() > 1 {
        return Err(refuse("invalid_request", "prompt=none cannot be combined with other values"));
    }
    let max_age = match get("max_age") {
        "" => None,
        v => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| refuse("invalid_request", "bad max_age"))?),
    };
    Ok(AuthRequest {
        client_id: client.id().to_string(),
        response_type,
        response_mode,
        redirect_uri,
        redirect_uri_given: !get("redirect_uri").is_empty(),
        scopes,
        state: get("state").to_string(),
        nonce,
        code_challenge: challenge,
        code_challenge_method: method,
        prompt,
        max_age,
        requested_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::{Clients, KeySet, Minter};

    fn provider() -> Provider {
        let config: crate::config::schema::Oidc = serde_yaml::from_str(
            "clients:\n  - {client_id: app, redirect_uris: ['https://app.example.com/cb']}\n  - {client_id: spa, public: true, redirect_uris: ['https://spa.example.com/cb', 'http://127.0.0.1:9/cb']}\n  - {client_id: imp, grant_types: [implicit, authorization_code], response_types: [code, 'id_token token', 'code id_token'], redirect_uris: ['https://i.example.com/cb']}",
        )
        .unwrap();
        Provider {
            clients: Clients::from_config(&config),
            keys: KeySet::from_config(&[]).unwrap(),
            minter: Minter::new("x"),
            config,
        }
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn untrusted_client_or_redirect_gets_a_page() {
        let p = provider();
        let bad = [
            params(&[("response_type", "code")]),
            params(&[("client_id", "nobody"), ("response_type", "code")]),
            params(&[("client_id", "app"), ("redirect_uri", "https://evil.example/cb")]),
            params(&[("client_id", "app"), ("redirect_uri", "https://app.example.com/cb/")]),
            params(&[("client_id", "spa")]),
        ];
        for b in bad {
            assert!(matches!(parse(&p, &b, false, 0), Err(Refusal::Page(_))), "{b:?}");
        }
    }

    #[test]
    fn other_errors_go_back_to_the_client() {
        let p = provider();
        let base = [("client_id", "app"), ("redirect_uri", "https://app.example.com/cb"), ("state", "s1")];
        let code_of = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            match parse(&p, &params(&all), false, 0) {
                Err(Refusal::Redirect { to, error }) => {
                    assert_eq!(to.state, "s1");
                    error.code
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(code_of(&[]), "invalid_request");
        assert_eq!(code_of(&[("response_type", "token")]), "unsupported_response_type");
        assert_eq!(code_of(&[("response_type", "code"), ("scope", "openid admin")]), "invalid_scope");
        assert_eq!(
            code_of(&[("response_type", "code"), ("code_challenge", CHALLENGE), ("code_challenge_method", "plain")]),
            "invalid_request"
        );
        assert_eq!(code_of(&[("response_type", "code"), ("request", "x")]), "request_not_supported");
    }

    #[test]
    fn pkce_for_public_clients_and_modes() {
        let p = provider();
        let spa = [("client_id", "spa"), ("redirect_uri", "http://127.0.0.1:9/cb"), ("response_type", "code")];
        assert!(matches!(parse(&p, &params(&spa), false, 0), Err(Refusal::Redirect { .. })), "PKCE required");
        let mut with = spa.to_vec();
        with.extend([("code_challenge", CHALLENGE), ("code_challenge_method", "S256"), ("scope", "openid")]);
        let r = parse(&p, &params(&with), false, 7).unwrap();
        assert_eq!((r.response_mode.as_str(), r.code_challenge_method.as_str(), r.requested_at), ("query", "S256", 7));
        let imp = [
            ("client_id", "imp"),
            ("response_type", "token id_token"),
            ("nonce", "n"),
            ("redirect_uri", "https://i.example.com/cb"),
        ];
        let r = parse(&p, &params(&imp), false, 0).unwrap();
        assert_eq!(r.response_mode, "fragment");
        let reply = Reply::of(&r);
        assert_eq!(
            reply.location(&reply.finish(vec![("code".into(), "c".into())], "https://auth.example.com")).unwrap(),
            "https://i.example.com/cb#code=c&iss=https%3A%2F%2Fauth.example.com"
        );
    }
}
