//! The OpenID Connect provider against the real binary: discovery and keys, the
//! authorization code flow with PKCE through login and consent, the token endpoint's
//! grants and refusals (wrong secret, reused code, wrong verifier, wrong redirect URI,
//! expired code, refresh token reuse), UserInfo with a revoked token, introspection,
//! revocation, pushed requests, two signing keys selected by kid, and CORS.

mod common;

use std::collections::HashMap;

use base64::Engine;
use common::client::Client;
use common::*;
use jsonwebtoken::jwk::JwkSet;
use serde_json::Value;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const ISSUER: &str = "https://auth.example.com";
const APP_CB: &str = "https://app.example.com/cb";

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins, dev]\n",
        argon2_hash("correct horse")
    )
}

/// A PBKDF2-SHA512 hash of `secret` in the passlib form Authelia documents, made by
/// Python's hashlib (an independent implementation), with few rounds to keep tests fast.
fn pbkdf2(secret: &str) -> String {
    let script = "import base64, hashlib, sys\n\
                  salt = b'0123456789abcdef'\n\
                  e = lambda b: base64.b64encode(b).decode().rstrip('=').replace('+', '.')\n\
                  h = hashlib.pbkdf2_hmac('sha512', sys.argv[1].encode(), salt, 1000)\n\
                  print('$pbkdf2-sha512$1000$' + e(salt) + '$' + e(h))";
    let out = std::process::Command::new("python3").args(["-c", script, secret]).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn clients_yaml() -> String {
    format!(
        "
      - client_id: app
        client_name: Test App
        client_secret: '{hash}'
        redirect_uris: ['{APP_CB}']
        post_logout_redirect_uris: ['https://app.example.com/bye']
        scopes: [openid, profile, email, groups, offline_access]
        grant_types: [authorization_code, refresh_token]
        authorization_policy: one_factor
        consent_mode: implicit
      - client_id: spa
        client_name: Single Page
        public: true
        redirect_uris: ['http://127.0.0.1:8765/cb']
        scopes: [openid, profile]
        authorization_policy: one_factor
        consent_mode: explicit
      - client_id: post
        client_secret: 'post-secret-in-plaintext'
        token_endpoint_auth_method: client_secret_post
        redirect_uris: ['https://post.example.com/cb']
        scopes: [openid, email]
        authorization_policy: one_factor
        consent_mode: pre-configured
        pre_configured_consent_duration: 1w
        lifespan: brief
        id_token_signed_response_key_id: second
      - client_id: svc
        client_secret: '{svc}'
        token_endpoint_auth_method: client_secret_post
        grant_types: [client_credentials]
        scopes: [api.read]
        access_token_signed_response_alg: RS256
      - client_id: strict
        client_secret: 'strict-secret-in-plaintext'
        redirect_uris: ['https://strict.example.com/cb']
        authorization_policy: two_factor
        consent_mode: implicit
",
        hash = pbkdf2("app-secret"),
        svc = argon2_hash("svc-secret-in-plaintext"),
    )
}

fn ec_key_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    key.serialize_pem()
}

fn rsa_key_pem() -> String {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap();
    key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string()
}

fn indent(text: &str, spaces: usize) -> String {
    text.lines().map(|l| format!("{}{l}\n", " ".repeat(spaces))).collect()
}

struct Setup {
    server: Server,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Starts the server with the provider; `keys` adds two configured signing keys.
fn start(keys: bool) -> Setup {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let jwks = if keys {
        format!(
            "    jwks:\n      - key_id: first\n        key: |\n{}      - key_id: second\n        algorithm: ES256\n        key: |\n{}",
            indent(&rsa_key_pem(), 10),
            indent(&ec_key_pem(), 10)
        )
    } else {
        String::new()
    };
    let extra = format!(
        "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'\n{jwks}    lifespans:\n      custom:\n        brief:\n          authorize_code: 1s\n    cors:\n      endpoints: [token, userinfo]\n      allowed_origins_from_client_redirect_uris: true\n    clients:{}",
        clients_yaml()
    );
    let yaml = config_yaml(port, dir.path(), &extra);
    let server = Server::start(Some(&yaml), port, &[]);
    Setup { server, port, _dir: dir }
}

fn login(port: u16) -> Client {
    let mut c = Client::new(port);
    let r = c.json("POST", "/api/firstfactor", serde_json::json!({"username": "john", "password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
    c
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn authorize(c: &mut Client, pairs: &[(&str, &str)]) -> Response {
    c.call("GET", &format!("/api/oidc/authorization?{}", query(pairs)), "")
}

fn location_params(r: &Response) -> HashMap<String, String> {
    let location = r.header("location").unwrap_or_else(|| panic!("no redirect: {} {}", r.status, r.body));
    let url = url::Url::parse(location).unwrap();
    let mut params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(fragment) = url.fragment() {
        params.extend(url::form_urlencoded::parse(fragment.as_bytes()).into_owned());
    }
    params
}

/// Where the page answering a form post goes on to by itself (a refresh, and a link).
fn continued_to(r: &Response) -> url::Url {
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(r#"http-equiv="refresh""#), "{}", r.body);
    let href = r.body.split(r#"<a href=""#).nth(1).unwrap().split('"').next().unwrap();
    url::Url::parse(&href.replace("&#x2f;", "/").replace("&amp;", "&").replace("&#x3d;", "=")).unwrap()
}

fn app_code(c: &mut Client, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("client_id", "app"),
        ("response_type", "code"),
        ("redirect_uri", APP_CB),
        ("scope", "openid profile email groups offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
    ];
    pairs.extend_from_slice(extra);
    let r = authorize(c, &pairs);
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with(APP_CB));
    let p = location_params(&r);
    assert_eq!(p["state"], "st4te");
    assert_eq!(p["iss"], ISSUER);
    p["code"].clone()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

fn token(port: u16, auth: Option<&str>, pairs: &[(&str, &str)]) -> Response {
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    request(port, "POST", "/api/oidc/token", &headers, &query(pairs))
}

fn exchange_app(port: u16, code: &str, extra: &[(&str, &str)]) -> Response {
    let mut pairs = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", APP_CB)];
    pairs.extend_from_slice(extra);
    token(port, Some(&basic("app", "app-secret")), &pairs)
}

fn userinfo(port: u16, access_token: &str) -> Response {
    get(port, "/api/oidc/userinfo", &[("Authorization", &format!("Bearer {access_token}"))])
}

fn jwks(port: u16) -> JwkSet {
    serde_json::from_str(&get(port, "/jwks.json", &[]).body).unwrap()
}

/// Verifies an ID token against the published keys (by kid) and returns its header's kid
/// and its claims.
fn verify_id_token(port: u16, id_token: &str, audience: &str) -> (String, Value) {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let kid = header.kid.clone().unwrap();
    let set = jwks(port);
    let jwk = set.find(&kid).unwrap_or_else(|| panic!("kid {kid} not published"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    let data = jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap();
    (kid, data.claims)
}

#[test]
fn discovery_keys_and_aliases() {
    let s = start(false);
    let d = get(s.port, "/.well-known/openid-configuration", &[]).json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["authorization_endpoint"], "https://auth.example.com/api/oidc/authorization");
    assert_eq!(d["token_endpoint"], "https://auth.example.com/api/oidc/token");
    assert_eq!(d["jwks_uri"], "https://auth.example.com/jwks.json");
    assert_eq!(d["userinfo_endpoint"], "https://auth.example.com/api/oidc/userinfo");
    assert_eq!(d["end_session_endpoint"], "https://auth.example.com/api/oidc/logout");
    assert_eq!(d["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    let m = get(s.port, "/.well-known/oauth-authorization-server", &[]).json();
    assert_eq!(m["issuer"], ISSUER);
    assert!(m.get("userinfo_endpoint").is_none());
    let keys = get(s.port, "/jwks.json", &[]).json();
    assert_eq!(keys, get(s.port, "/oauth/jwks", &[]).json(), "the seed's path is an alias");
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);
    assert_eq!(keys["keys"][0]["kty"], "RSA");
    assert!(keys["keys"][0].get("d").is_none(), "no private part is published");
}

#[test]
fn generated_key_survives_a_restart() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let extra = "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'\n    clients:\n      - {client_id: c, client_secret: 'plain-secret-for-tests', redirect_uris: ['https://c.example.com/cb']}\n";
    let yaml = config_yaml(port, dir.path(), extra);
    let first = Server::start(Some(&yaml), port, &[]);
    let before = get(port, "/jwks.json", &[]).json();
    drop(first);
    let _second = Server::start(Some(&yaml), port, &[]);
    assert_eq!(get(port, "/jwks.json", &[]).json(), before);
}

#[test]
fn authorization_code_flow_with_tokens_userinfo_and_refresh_rotation() {
    let s = start(false);
    // Anonymous: on to the login page, coming back to the pending request.
    let mut anonymous = Client::new(s.port);
    let r = authorize(
        &mut anonymous,
        &[("client_id", "app"), ("response_type", "code"), ("redirect_uri", APP_CB), ("scope", "openid")],
    );
    assert_eq!(r.status, 302);
    let login_url = url::Url::parse(r.header("location").unwrap()).unwrap();
    assert_eq!(login_url.path(), "/login");
    let rd = login_url.query_pairs().find(|(k, _)| k == "rd").unwrap().1.to_string();
    assert!(rd.starts_with("https://auth.example.com/api/oidc/authorization?flow=portcullis_fl_"), "{rd}");
    // After logging in, the pending request completes.
    let mut c = login(s.port);
    let path = rd.strip_prefix(ISSUER).unwrap();
    let r = c.call("GET", path, "");
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(location_params(&r).contains_key("code"));
    assert_eq!(c.call("GET", path, "").status, 400, "a pending request completes once");

    let code = app_code(&mut c, &[]);
    let r = exchange_app(s.port, &code, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let access = t["access_token"].as_str().unwrap().to_string();
    assert!(access.starts_with("portcullis_at_"));
    let (_, claims) = verify_id_token(s.port, t["id_token"].as_str().unwrap(), "app");
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["azp"], "app");
    assert_eq!(claims["preferred_username"], "john");
    assert_eq!(claims["email"], "john@example.com");
    assert_eq!(claims["groups"], serde_json::json!(["admins", "dev"]));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims.get("acr").is_none(), "a password alone claims no assurance class");
    assert!(claims["auth_time"].as_i64().unwrap() > 0);
    let sub = claims["sub"].as_str().unwrap().to_string();
    assert_ne!(sub, "john", "the subject is opaque");
    let at_hash = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(access.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    assert_eq!(claims["at_hash"], at_hash);

    let info = userinfo(s.port, &access);
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["name"], "John Doe");
    let info_post = request(
        s.port,
        "POST",
        "/oauth/userinfo",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &query(&[("access_token", &access)]),
    );
    assert_eq!(info_post.json()["sub"], sub.as_str(), "POST and the seed's alias");

    // The same user gets the same subject on the next authorization.
    let code2 = app_code(&mut c, &[]);
    let t2 = exchange_app(s.port, &code2, &[]).json();
    let (_, claims2) = verify_id_token(s.port, t2["id_token"].as_str().unwrap(), "app");
    assert_eq!(claims2["sub"], sub.as_str());

    // Refresh rotation: the new pair works, the old access token ends.
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rotated = r.json();
    let new_access = rotated["access_token"].as_str().unwrap().to_string();
    let new_refresh = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new_refresh, refresh);
    assert_eq!(userinfo(s.port, &new_access).status, 200);
    assert_eq!(userinfo(s.port, &access).status, 401, "the rotated-out access token is revoked");
    // Presenting the rotated-out refresh token again revokes the whole chain.
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    );
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(userinfo(s.port, &new_access).status, 401, "the chain's access token is revoked");
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", &new_refresh)],
    );
    assert_eq!(r.status, 400, "the chain's newest refresh token is revoked too");
    // The other chain is untouched.
    assert_eq!(userinfo(s.port, t2["access_token"].as_str().unwrap()).status, 200);
    let log = s.server.wait_for_log("refresh token reused");
    assert!(log.contains("refresh token reused") && log.contains("app"), "logged with the client id");
    for secret in [access.as_str(), refresh.as_str(), new_refresh.as_str(), code.as_str(), "app-secret"] {
        assert!(!log.contains(secret), "no code, token or secret reaches the log");
    }
}

#[test]
fn token_endpoint_refusals() {
    let s = start(false);
    let mut c = login(s.port);
    // Wrong secret, unknown client, wrong method.
    let code = app_code(&mut c, &[]);
    let pairs = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", APP_CB)];
    let r = token(s.port, Some(&basic("app", "wrong")), &pairs);
    assert_eq!((r.status, r.json()["error"].as_str()), (401, Some("invalid_client")));
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(token(s.port, Some(&basic("nobody", "x")), &pairs).status, 401);
    let mut post = pairs.to_vec();
    post.extend([("client_id", "app"), ("client_secret", "app-secret")]);
    assert_eq!(token(s.port, None, &post).status, 401, "app is registered for client_secret_basic");
    // The code was not spent by refused attempts; wrong redirect_uri spends it.
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example.com/other")],
    );
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")));

    // A reused code: refused, and the tokens issued from it are revoked.
    let code = app_code(&mut c, &[]);
    let first = exchange_app(s.port, &code, &[]).json();
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(s.port, access).status, 200);
    let again = exchange_app(s.port, &code, &[]);
    assert_eq!((again.status, again.json()["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(userinfo(s.port, access).status, 401, "tokens of a replayed code are revoked");
    let refresh = first["refresh_token"].as_str().unwrap();
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    );
    assert_eq!(r.status, 400);

    // PKCE: the right verifier works, a wrong one or none is refused.
    let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];
    let code = app_code(&mut c, &pkce);
    let r = exchange_app(s.port, &code, &[("code_verifier", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX")]);
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")));
    let code = app_code(&mut c, &pkce);
    assert_eq!(exchange_app(s.port, &code, &[]).status, 400, "verifier missing");
    let code = app_code(&mut c, &pkce);
    assert_eq!(exchange_app(s.port, &code, &[("code_verifier", VERIFIER)]).status, 200);

    // A request that named no redirect URI (the client has one): the token request may
    // leave it out too, but not name another.
    let r = authorize(&mut c, &[("client_id", "app"), ("response_type", "code"), ("scope", "openid")]);
    let code = location_params(&r)["code"].clone();
    let r = token(s.port, Some(&basic("app", "app-secret")), &[("grant_type", "authorization_code"), ("code", &code)]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = authorize(&mut c, &[("client_id", "app"), ("response_type", "code"), ("scope", "openid")]);
    let code = location_params(&r)["code"].clone();
    let r = token(
        s.port,
        Some(&basic("app", "app-secret")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example.com/x")],
    );
    assert_eq!(r.status, 400);
    // A request that named it: the token request must name it.
    let code = app_code(&mut c, &[]);
    let r = token(s.port, Some(&basic("app", "app-secret")), &[("grant_type", "authorization_code"), ("code", &code)]);
    assert_eq!(r.status, 400);

    // Garbage, unsupported grant types.
    assert_eq!(exchange_app(s.port, "portcullis_ac_forged.sig", &[]).status, 400);
    let r = token(s.port, Some(&basic("app", "app-secret")), &[("grant_type", "client_credentials")]);
    assert_eq!(r.json()["error"], "unauthorized_client");
    let r = token(s.port, Some(&basic("app", "app-secret")), &[("grant_type", "password")]);
    assert_eq!(r.status, 400);
    let log = s.server.wait_for_log("authorization code replayed");
    assert!(log.contains("authorization code replayed"));
}

#[test]
fn expired_code_and_consent_and_pkce_for_public_clients() {
    let s = start(true);
    let mut c = login(s.port);
    // pre-configured consent: asked once, remembered.
    let pairs = [
        ("client_id", "post"),
        ("response_type", "code"),
        ("redirect_uri", "https://post.example.com/cb"),
        ("scope", "openid email"),
        ("state", "s"),
    ];
    let r = authorize(&mut c, &pairs);
    let consent = r.header("location").unwrap().to_string();
    assert!(consent.starts_with("https://auth.example.com/consent?flow="), "{consent}");
    let page = c.call("GET", consent.strip_prefix(ISSUER).unwrap(), "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("post") && page.body.contains("See your email address"), "{}", page.body);
    let csrf = page.body.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let flow = page.body.split(r#"name="flow" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let cookie = c.cookie.clone().unwrap();
    let submit = |csrf: &str| {
        request(
            s.port,
            "POST",
            "/consent",
            &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &cookie), ("Origin", ISSUER)],
            &query(&[("csrf", csrf), ("flow", &flow), ("decision", "accept"), ("remember", "1")]),
        )
    };
    assert_eq!(submit("forged").status, 403, "the consent form is CSRF protected");
    let r = submit(&csrf);
    // After a form post the answer leaves through a page that goes on by itself (no
    // form-action check on the relying party's own redirects).
    assert_eq!(r.status, 200, "{}", r.body);
    let goes_to = continued_to(&r);
    assert_eq!(goes_to.as_str().split('?').next(), Some("https://post.example.com/cb"), "{goes_to}");
    let code = goes_to.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    // The client's brief lifespan lets the code expire.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let post_pairs = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", "https://post.example.com/cb".to_string()),
            ("client_id", "post".to_string()),
            ("client_secret", "post-secret-in-plaintext".to_string()),
        ]
    };
    let as_refs = |v: &[(&'static str, String)]| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let send = |pairs: Vec<(&str, String)>| {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        token(s.port, None, &refs)
    };
    let r = send(as_refs(&post_pairs(&code)));
    assert_eq!((r.status, r.json()["error"].as_str()), (400, Some("invalid_grant")), "expired code");
    // Remembered: no consent page now, and its ID token is signed with the client's key.
    let r = authorize(&mut c, &pairs);
    let code = location_params(&r)["code"].clone();
    let t = send(as_refs(&post_pairs(&code)));
    assert_eq!(t.status, 200, "{}", t.body);
    let (kid, _) = verify_id_token(s.port, t.json()["id_token"].as_str().unwrap(), "post");
    assert_eq!(kid, "second");
    assert_eq!(jwks(s.port).keys.len(), 2);

    // explicit consent with a public client: PKCE is required, denial goes back.
    let spa = [
        ("client_id", "spa"),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:8765/cb"),
        ("scope", "openid profile"),
        ("state", "x"),
    ];
    let r = authorize(&mut c, &spa);
    let p = location_params(&r);
    assert_eq!((p["error"].as_str(), p["state"].as_str()), ("invalid_request", "x"));
    let mut with_pkce = spa.to_vec();
    with_pkce.extend([("code_challenge", CHALLENGE), ("code_challenge_method", "S256")]);
    let consent = authorize(&mut c, &with_pkce).header("location").unwrap().to_string();
    let page = c.call("GET", consent.strip_prefix(ISSUER).unwrap(), "");
    assert!(!page.body.contains(r#"name="remember""#), "explicit consent is not remembered");
    let csrf = page.body.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let flow = page.body.split(r#"name="flow" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = request(
        s.port,
        "POST",
        "/consent",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &cookie), ("Origin", ISSUER)],
        &query(&[("csrf", &csrf), ("flow", &flow), ("decision", "deny")]),
    );
    let denied: HashMap<String, String> = continued_to(&r).query_pairs().into_owned().collect();
    assert_eq!(denied["error"], "access_denied");
    let consent = authorize(&mut c, &with_pkce).header("location").unwrap().to_string();
    let page = c.call("GET", consent.strip_prefix(ISSUER).unwrap(), "");
    let csrf = page.body.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let flow = page.body.split(r#"name="flow" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let r = request(
        s.port,
        "POST",
        "/consent",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &cookie), ("Origin", ISSUER)],
        &query(&[("csrf", &csrf), ("flow", &flow), ("decision", "accept")]),
    );
    let code = continued_to(&r).query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let r = token(
        s.port,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:8765/cb"),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (kid, _) = verify_id_token(s.port, r.json()["id_token"].as_str().unwrap(), "spa");
    assert_eq!(kid, "first", "the first key signs by default");
}

#[test]
fn bad_requests_get_a_page_or_an_error_redirect() {
    let s = start(false);
    let mut c = login(s.port);
    for pairs in [
        vec![("client_id", "nobody"), ("response_type", "code"), ("redirect_uri", APP_CB)],
        vec![("client_id", "app"), ("response_type", "code"), ("redirect_uri", "https://evil.example/cb")],
        vec![("client_id", "app"), ("response_type", "code"), ("redirect_uri", "https://app.example.com/cb/")],
    ] {
        let r = authorize(&mut c, &pairs);
        assert_eq!(r.status, 400, "{pairs:?}");
        assert!(r.header("location").is_none(), "never a redirect");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
    }
    let r = authorize(
        &mut c,
        &[("client_id", "app"), ("response_type", "token"), ("redirect_uri", APP_CB), ("state", "z")],
    );
    let p = location_params(&r);
    assert_eq!((p["error"].as_str(), p["state"].as_str()), ("unsupported_response_type", "z"));
    let r = authorize(
        &mut c,
        &[("client_id", "app"), ("response_type", "code"), ("redirect_uri", APP_CB), ("scope", "openid admin")],
    );
    assert_eq!(location_params(&r)["error"], "invalid_scope");
    // A two-factor client sends a one-factor session on to the second factor.
    let r = authorize(
        &mut c,
        &[("client_id", "strict"), ("response_type", "code"), ("redirect_uri", "https://strict.example.com/cb")],
    );
    assert!(r.header("location").unwrap().starts_with("https://auth.example.com/login?rd="), "{r:?}");
    let r = authorize(
        &mut c,
        &[
            ("client_id", "strict"),
            ("response_type", "code"),
            ("redirect_uri", "https://strict.example.com/cb"),
            ("prompt", "none"),
        ],
    );
    assert_eq!(location_params(&r)["error"], "login_required");
    let log = s.server.wait_for_log("authorization request refused");
    assert!(log.contains("client_id=nobody") || log.contains("\"client_id\":\"nobody\"") || log.contains("nobody"));
}

#[test]
fn client_credentials_introspection_revocation_par_and_cors() {
    let s = start(false);
    let svc = |pairs: &[(&str, &str)]| {
        let mut all = vec![("client_id", "svc"), ("client_secret", "svc-secret-in-plaintext")];
        all.extend_from_slice(pairs);
        all.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect::<Vec<_>>()
    };
    let post = |path: &str, pairs: Vec<(String, String)>| {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        request(s.port, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], &body)
    };
    let r = post("/api/oidc/token", svc(&[("grant_type", "client_credentials"), ("scope", "api.read")]));
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let access = t["access_token"].as_str().unwrap().to_string();
    // An RFC 9068 JWT access token, signed with the provider's key.
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let r = post("/api/oidc/token", svc(&[("grant_type", "client_credentials"), ("scope", "openid")]));
    assert_eq!(r.json()["error"], "invalid_scope");

    let intro = post("/api/oidc/introspection", svc(&[("token", &access)])).json();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "svc");
    assert_eq!(intro["sub"], "oauth2:client:svc");
    assert_eq!(intro["scope"], "api.read");
    assert_eq!(post("/api/oidc/introspection", vec![("token".into(), access.clone())]).status, 401);
    assert_eq!(post("/api/oidc/revocation", svc(&[("token", &access)])).status, 200);
    assert_eq!(post("/api/oidc/introspection", svc(&[("token", &access)])).json()["active"], false);
    assert_eq!(userinfo(s.port, &access).status, 401, "revoked, and no user anyway");

    // Pushed authorization request, then the browser uses its request_uri once.
    let mut c = login(s.port);
    let body = query(&[("response_type", "code"), ("redirect_uri", APP_CB), ("scope", "openid"), ("state", "par")]);
    let r = request(
        s.port,
        "POST",
        "/api/oidc/pushed-authorization-request",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &basic("app", "app-secret"))],
        &body,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let uri = r.json()["request_uri"].as_str().unwrap().to_string();
    assert!(uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    let r = authorize(&mut c, &[("client_id", "app"), ("request_uri", &uri)]);
    let p = location_params(&r);
    assert_eq!(p["state"], "par");
    assert_eq!(exchange_app(s.port, &p["code"], &[]).status, 200);
    assert_eq!(authorize(&mut c, &[("client_id", "app"), ("request_uri", &uri)]).status, 400, "used once");

    // CORS: an origin from a client's redirect URIs, on a listed endpoint.
    let r = request(
        s.port,
        "OPTIONS",
        "/api/oidc/token",
        &[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")],
        "",
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example.com"));
    let r = request(s.port, "OPTIONS", "/api/oidc/token", &[("Origin", "https://evil.example")], "");
    assert!(r.header("access-control-allow-origin").is_none());
    let r = request(s.port, "POST", "/api/oidc/introspection", &[("Origin", "https://app.example.com")], "");
    assert!(r.header("access-control-allow-origin").is_none(), "introspection is not listed");
}

#[test]
fn rp_initiated_logout_ends_the_session() {
    let s = start(false);
    let mut c = login(s.port);
    let code = app_code(&mut c, &[]);
    let r = exchange_app(s.port, &code, &[]);
    let id_token = r.json()["id_token"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_string();
    let r = c.call(
        "GET",
        &format!(
            "/api/oidc/logout?{}",
            query(&[("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://evil.example/bye"),])
        ),
        "",
    );
    assert_eq!(r.status, 400, "an unregistered post_logout_redirect_uri");
    assert_eq!(c.level(), 1);
    let r = c.call(
        "GET",
        &format!(
            "/api/oidc/logout?{}",
            query(&[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", "https://app.example.com/bye"),
                ("state", "s1"),
            ])
        ),
        "",
    );
    assert_eq!(r.header("location"), Some("https://app.example.com/bye?state=s1"));
    assert_eq!(c.level(), 0, "the session ended");
}

/// A forward-auth check of `url` with `authorization`.
fn forward_auth(port: u16, url: &str, authorization: &str) -> Response {
    let parsed = url::Url::parse(url).unwrap();
    get(
        port,
        "/api/authz/forward-auth",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", parsed.scheme()),
            ("X-Forwarded-Host", parsed.host_str().unwrap()),
            ("X-Forwarded-Uri", parsed.path()),
            ("Authorization", authorization),
        ],
    )
}

#[test]
fn bearer_access_tokens_at_the_authorization_endpoint() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let endpoints = "  endpoints:
    authz:
      forward-auth:
        implementation: ForwardAuth
        authn_strategies:
          - {name: HeaderAuthorization, schemes: [Basic, Bearer]}
          - {name: CookieSession}
";
    let extra = "
access_control:
  default_policy: deny
  rules:
    - {domain: api.example.com, subject: 'oauth2:client:robot', policy: one_factor}
    - {domain: app.example.com, subject: 'user:john', policy: one_factor}
identity_providers:
  oidc:
    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'
    clients:
      - client_id: robot
        client_secret: 'robot-secret-in-plaintext'
        token_endpoint_auth_method: client_secret_post
        grant_types: [client_credentials]
        scopes: [authelia.bearer.authz, other]
        audience: ['https://api.example.com']
      - client_id: other
        client_secret: 'other-secret-in-plaintext'
        token_endpoint_auth_method: client_secret_post
        grant_types: [client_credentials]
        scopes: [authelia.bearer.authz]
      - client_id: web
        client_secret: 'web-secret-in-plaintext'
        token_endpoint_auth_method: client_secret_post
        redirect_uris: ['https://web.example.com/cb']
        scopes: [openid, authelia.bearer.authz]
        authorization_policy: one_factor
        consent_mode: implicit
";
    let address = format!("  address: 'tcp://127.0.0.1:{port}/'\n");
    let yaml = config_yaml(port, dir.path(), extra).replace(&address, &format!("{address}{endpoints}"));
    let _server = Server::start(Some(&yaml), port, &[]);
    let cc = |id: &str, secret: &str, scope: &str, audience: &str| {
        let mut pairs =
            vec![("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret), ("scope", scope)];
        if !audience.is_empty() {
            pairs.push(("audience", audience));
        }
        let r = token(port, None, &pairs);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_string()
    };
    let robot = cc("robot", "robot-secret-in-plaintext", "authelia.bearer.authz", "https://api.example.com");
    let r = forward_auth(port, "https://api.example.com/v1/things", &format!("Bearer {robot}"));
    assert_eq!(r.status, 200, "the oauth2:client:robot rule lets its token through");
    assert_eq!(
        forward_auth(port, "https://app.example.com/", &format!("Bearer {robot}")).status,
        401,
        "a token for another audience"
    );
    let unscoped = cc("robot", "robot-secret-in-plaintext", "other", "https://api.example.com");
    assert_eq!(forward_auth(port, "https://api.example.com/v1", &format!("Bearer {unscoped}")).status, 401);
    let stranger = cc("other", "other-secret-in-plaintext", "authelia.bearer.authz", "");
    assert_eq!(forward_auth(port, "https://api.example.com/v1", &format!("Bearer {stranger}")).status, 403);
    assert_eq!(forward_auth(port, "https://api.example.com/v1", "Bearer portcullis_at_x.y").status, 401);

    // A user's token stands for the user.
    let mut c = login(port);
    let r = authorize(
        &mut c,
        &[
            ("client_id", "web"),
            ("response_type", "code"),
            ("redirect_uri", "https://web.example.com/cb"),
            ("scope", "openid authelia.bearer.authz"),
        ],
    );
    let code = location_params(&r)["code"].clone();
    let t = token(
        port,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://web.example.com/cb"),
            ("client_id", "web"),
            ("client_secret", "web-secret-in-plaintext"),
        ],
    )
    .json();
    let user_token = t["access_token"].as_str().unwrap();
    let r = forward_auth(port, "https://app.example.com/", &format!("Bearer {user_token}"));
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
}

/// Starts a server with `clients` (YAML list items) and `extra` top-level YAML.
fn start_with(clients: &str, extra: &str) -> Setup {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let oidc = format!(
        "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'\n    clients:\n{clients}{extra}"
    );
    let yaml = config_yaml(port, dir.path(), &oidc);
    let server = Server::start(Some(&yaml), port, &[]);
    Setup { server, port, _dir: dir }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn jwt_client_assertions() {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap();
    let private = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let public = key.to_public_key().to_public_key_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let clients = format!(
        "      - client_id: shared
        client_secret: 'a-shared-secret-long-enough-for-hs256-0123456789'
        token_endpoint_auth_method: client_secret_jwt
        grant_types: [client_credentials]
        scopes: [api]
      - client_id: keyed
        token_endpoint_auth_method: private_key_jwt
        grant_types: [client_credentials]
        scopes: [api]
        jwks:
          - key_id: k1
            algorithm: RS256
            key: |
{}",
        indent(&public, 14)
    );
    let s = start_with(&clients, "");
    let assertion = |client: &str, key: &jsonwebtoken::EncodingKey, alg, aud: &str, jti: &str| {
        let claims =
            serde_json::json!({"iss": client, "sub": client, "aud": aud, "jti": jti, "exp": now() + 60, "iat": now()});
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let send = |a: &str| {
        token(
            s.port,
            None,
            &[
                ("grant_type", "client_credentials"),
                ("scope", "api"),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", a),
            ],
        )
    };
    let aud = "https://auth.example.com/api/oidc/token";
    let hmac = jsonwebtoken::EncodingKey::from_secret(b"a-shared-secret-long-enough-for-hs256-0123456789");
    let a = assertion("shared", &hmac, jsonwebtoken::Algorithm::HS256, aud, "j1");
    assert_eq!(send(&a).status, 200, "client_secret_jwt");
    assert_eq!(send(&a).status, 401, "an assertion works once");
    let wrong = jsonwebtoken::EncodingKey::from_secret(b"not-the-secret-at-all-but-as-long-as-the-real");
    assert_eq!(send(&assertion("shared", &wrong, jsonwebtoken::Algorithm::HS256, aud, "j2")).status, 401);
    assert_eq!(
        send(&assertion("shared", &hmac, jsonwebtoken::Algorithm::HS256, "https://x.example/", "j3")).status,
        401
    );
    let rsa_key = jsonwebtoken::EncodingKey::from_rsa_pem(private.as_bytes()).unwrap();
    let r = send(&assertion("keyed", &rsa_key, jsonwebtoken::Algorithm::RS256, aud, "k1"));
    assert_eq!(r.status, 200, "private_key_jwt: {}", r.body);
    let other = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap();
    let other_pem = other.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap().to_string();
    let other_key = jsonwebtoken::EncodingKey::from_rsa_pem(other_pem.as_bytes()).unwrap();
    assert_eq!(send(&assertion("keyed", &other_key, jsonwebtoken::Algorithm::RS256, aud, "k2")).status, 401);
    assert_eq!(send(&assertion("keyed", &hmac, jsonwebtoken::Algorithm::HS256, aud, "k3")).status, 401);
}

#[test]
fn implicit_hybrid_and_form_post_for_clients_that_list_them() {
    let clients = "      - client_id: imp
        client_secret: 'imp-secret-in-plaintext'
        grant_types: [implicit, authorization_code]
        response_types: [code, 'id_token token', 'code id_token']
        redirect_uris: ['https://imp.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
      - client_id: plain
        client_secret: 'plain-secret-in-plaintext'
        redirect_uris: ['https://plain.example.com/cb']
        authorization_policy: one_factor
        consent_mode: implicit
        userinfo_signed_response_alg: RS256
";
    let s = start_with(clients, "");
    let mut c = login(s.port);
    let r = authorize(
        &mut c,
        &[
            ("client_id", "imp"),
            ("response_type", "id_token token"),
            ("redirect_uri", "https://imp.example.com/cb"),
            ("scope", "openid profile"),
            ("nonce", "n1"),
            ("state", "s1"),
        ],
    );
    let location = r.header("location").unwrap();
    assert!(location.starts_with("https://imp.example.com/cb#"), "tokens travel in the fragment: {location}");
    let p = location_params(&r);
    let (_, claims) = verify_id_token(s.port, &p["id_token"], "imp");
    assert_eq!(claims["nonce"], "n1");
    let expected_at_hash = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(p["access_token"].as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    assert_eq!(claims["at_hash"], expected_at_hash);
    assert_eq!(userinfo(s.port, &p["access_token"]).json()["preferred_username"], "john");
    // Hybrid, posted back with form_post.
    let r = authorize(
        &mut c,
        &[
            ("client_id", "imp"),
            ("response_type", "code id_token"),
            ("response_mode", "form_post"),
            ("redirect_uri", "https://imp.example.com/cb"),
            ("scope", "openid"),
            ("nonce", "n2"),
        ],
    );
    assert_eq!(r.status, 200);
    assert!(r.body.contains(r#"action="https:&#x2f;&#x2f;imp.example.com&#x2f;cb""#), "{}", r.body);
    assert!(r.body.contains(r#"name="code""#) && r.body.contains(r#"name="id_token""#));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action https://imp.example.com"), "{csp}");
    // Without the implicit grant, the token response types are refused.
    let r = authorize(
        &mut c,
        &[
            ("client_id", "plain"),
            ("response_type", "id_token token"),
            ("redirect_uri", "https://plain.example.com/cb"),
            ("nonce", "n"),
        ],
    );
    assert_eq!(location_params(&r)["error"], "unsupported_response_type");
    // A client that registered userinfo_signed_response_alg gets a signed UserInfo.
    let r = authorize(
        &mut c,
        &[
            ("client_id", "plain"),
            ("response_type", "code"),
            ("redirect_uri", "https://plain.example.com/cb"),
            ("scope", "openid profile"),
        ],
    );
    let code = location_params(&r)["code"].clone();
    let t = token(
        s.port,
        Some(&basic("plain", "plain-secret-in-plaintext")),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://plain.example.com/cb")],
    )
    .json();
    let info = userinfo(s.port, t["access_token"].as_str().unwrap());
    assert_eq!(info.header("content-type"), Some("application/jwt"));
    let (_, claims) = verify_id_token(s.port, &info.body, "plain");
    assert_eq!(claims["preferred_username"], "john");
}

#[test]
fn the_admin_console_lists_clients_without_secrets() {
    let s = start_with(
        "      - {client_id: listed-app, client_name: Listed App, client_secret: 'never-shown-secret-value', redirect_uris: ['https://listed.example.com/cb'], authorization_policy: one_factor}\n      - {client_id: listed-spa, public: true, redirect_uris: ['http://127.0.0.1:9/cb']}\n",
        "admin:\n  require_two_factor: false\n",
    );
    let c = login(s.port);
    let cookie = c.cookie.clone().unwrap();
    let r = get(s.port, "/admin/clients", &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);
    for shown in [
        "listed-app",
        "Listed App",
        "https:&#x2f;&#x2f;listed.example.com&#x2f;cb",
        "Confidential",
        "Public",
        "one_factor",
    ] {
        assert!(r.body.contains(shown), "{shown} in {}", r.body);
    }
    assert!(!r.body.contains("never-shown-secret-value"));
    assert!(r.body.contains("/admin/clients"), "the console's navigation links the page");
    assert_eq!(get(s.port, "/admin/clients", &[]).status, 302, "anonymous: on to the sign-in");
}

#[test]
fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let s = start(false);
    let mut c = login(s.port);
    let base = [("client_id", "app"), ("response_type", "code"), ("redirect_uri", APP_CB), ("scope", "openid")];
    // A recent sign-in satisfies max_age.
    let mut recent = base.to_vec();
    recent.push(("max_age", "3600"));
    assert!(location_params(&authorize(&mut c, &recent)).contains_key("code"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let mut pairs = base.to_vec();
        pairs.push(extra);
        let r = authorize(&mut c, &pairs);
        let location = r.header("location").unwrap().to_string();
        assert!(location.starts_with("https://auth.example.com/login?rd="), "{extra:?}: {location}");
        assert_eq!(c.level(), 0, "{extra:?}: the old session ended");
        // Signing in again comes back to the request, which now completes.
        let rd = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "rd").unwrap().1.to_string();
        c = login(s.port);
        let r = c.call("GET", rd.strip_prefix(ISSUER).unwrap(), "");
        assert!(location_params(&r).contains_key("code"), "{extra:?}: {r:?}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let mut none = base.to_vec();
    none.extend([("prompt", "none"), ("max_age", "0")]);
    assert_eq!(location_params(&authorize(&mut c, &none))["error"], "login_required");
}

#[test]
fn key_rotation_keeps_old_tokens_verifiable() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let (old_key, new_key) = (rsa_key_pem(), ec_key_pem());
    let key = |kid: &str, alg: &str, pem: &str| {
        format!("      - key_id: {kid}\n        algorithm: {alg}\n        key: |\n{}", indent(pem, 10))
    };
    let config = |jwks: String| {
        let extra = format!(
            "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'\n    jwks:\n{jwks}    clients:\n      - {{client_id: app, client_secret: 'app-secret-in-plaintext', redirect_uris: ['{APP_CB}'], authorization_policy: one_factor, consent_mode: implicit, id_token_signed_response_alg: ES256}}\n      - {{client_id: rs, client_secret: 'rs-secret-in-plaintext', redirect_uris: ['{APP_CB}'], authorization_policy: one_factor, consent_mode: implicit}}\n"
        );
        config_yaml(port, dir.path(), &extra)
    };
    let id_token_for = |client: &str, secret: &str| {
        let mut c = login(port);
        let r = authorize(
            &mut c,
            &[("client_id", client), ("response_type", "code"), ("redirect_uri", APP_CB), ("scope", "openid")],
        );
        let code = location_params(&r)["code"].clone();
        let t = token(
            port,
            Some(&basic(client, secret)),
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", APP_CB)],
        );
        t.json()["id_token"].as_str().unwrap().to_string()
    };
    // Before: only the old key.
    let server = Server::start(Some(&config(key("old", "RS256", &old_key))), port, &[]);
    let before = id_token_for("rs", "rs-secret-in-plaintext");
    assert_eq!(verify_id_token(port, &before, "rs").0, "old");
    drop(server);
    // The new key is added first; the old one stays published while its tokens live.
    let _server = Server::start(
        Some(&config(format!("{}{}", key("new", "ES256", &new_key), key("old", "RS256", &old_key)))),
        port,
        &[],
    );
    assert_eq!(jwks(port).keys.len(), 2);
    assert_eq!(verify_id_token(port, &before, "rs").0, "old", "a token of the old key still verifies");
    let after = id_token_for("app", "app-secret-in-plaintext");
    assert_eq!(verify_id_token(port, &after, "app").0, "new", "new tokens use the new key");
    assert_eq!(verify_id_token(port, &id_token_for("rs", "rs-secret-in-plaintext"), "rs").0, "old", "RS256 by kid");
}

#[test]
fn pending_authorizations_are_limited_per_address() {
    let s = start(false);
    let mut anonymous = Client::new(s.port);
    let pairs = [("client_id", "app"), ("response_type", "code"), ("redirect_uri", APP_CB), ("state", "s")];
    for _ in 0..120 {
        let r = authorize(&mut anonymous, &pairs);
        assert!(r.header("location").unwrap().starts_with("https://auth.example.com/login?rd="));
    }
    let r = authorize(&mut anonymous, &pairs);
    assert_eq!(location_params(&r)["error"], "temporarily_unavailable", "each pending request is a row");
}
