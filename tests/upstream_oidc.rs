//! Sign-in through an upstream OpenID provider, against the real binary twice: a second
//! Portcullis is the upstream (its OpenID Connect provider), the first signs users in
//! with it. Linking by verified address, a session that works at forward-auth, refusals
//! (wrong state, replayed callback, no sign-in started, unknown address), the settings
//! API (admin only, never the secret, probe before storing), and creating users.
//!
//! A hostile provider (a few lines of HTTP here) answers what a genuine one never would:
//! an ID token with the wrong nonce, expired, signed with a key not its own, for another
//! audience, or under a key ID it never publishes; and it rotates its key, which a sign-in
//! must survive.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::*;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

const DOWNSTREAM_SECRET: &str = "downstream-secret-0123456789";

/// A cookie jar per site and requests addressed by URL: `*.example.com` is the
/// downstream server, anything else on loopback is taken at its own port.
struct Browser {
    downstream: u16,
    jars: HashMap<String, BTreeMap<String, String>>,
}

impl Browser {
    fn new(downstream: u16) -> Self {
        Self { downstream, jars: HashMap::new() }
    }

    fn site(host: &str) -> String {
        if host.ends_with("example.com") { "example.com".into() } else { host.to_string() }
    }

    fn send(&mut self, method: &str, url: &str, body: &str) -> Response {
        let u = url::Url::parse(url).unwrap();
        let host = u.host_str().unwrap().to_string();
        let port = if host.ends_with("example.com") { self.downstream } else { u.port().unwrap() };
        let host_header = match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let site = Self::site(&host);
        let jar = self.jars.entry(site.clone()).or_default();
        let cookies = jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut headers = vec![("Host", host_header.as_str())];
        if !cookies.is_empty() {
            headers.push(("Cookie", cookies.as_str()));
        }
        let path = match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        };
        let r = request(port, method, &path, &headers, body);
        for (_, set) in r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")) {
            let pair = set.split(';').next().unwrap().trim();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        r
    }

    fn get(&mut self, url: &str) -> Response {
        self.send("GET", url, "")
    }

    fn cookie(&self, site: &str, name: &str) -> Option<String> {
        self.jars.get(site).and_then(|j| j.get(name)).cloned()
    }
}

fn location(r: &Response) -> String {
    r.header("location").unwrap_or_else(|| panic!("no redirect: {} {}", r.status, r.body)).to_string()
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn upstream_config(port: u16, dir: &std::path::Path) -> String {
    let users = format!(
        "users:\n\
         \x20 ulrich:\n    displayname: Ulrich\n    password: '{pw}'\n    email: john@example.com\n    groups: [staff]\n\
         \x20 stranger:\n    displayname: Stranger\n    password: '{pw}'\n    email: stranger@elsewhere.org\n\
         \x20 newbie:\n    displayname: New Bie\n    password: '{pw}'\n    email: newbie@example.com\n    groups: [dev, testers]\n",
        pw = argon2_hash("upstream password")
    );
    std::fs::write(dir.join("users.yml"), users).unwrap();
    let extra = format!(
        "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'\n    clients:\n\
         \x20     - client_id: downstream\n        client_secret: '{DOWNSTREAM_SECRET}'\n\
         \x20       redirect_uris: ['https://auth.example.com/login/oidc/callback']\n\
         \x20       scopes: [openid, profile, email, groups]\n        authorization_policy: one_factor\n\
         \x20       consent_mode: implicit\n"
    );
    config_yaml(port, dir, &extra).replace(
        "domain: example.com\n      authelia_url: 'https://auth.example.com/'\n      default_redirection_url: 'https://www.example.com/'",
        &format!("domain: localhost\n      authelia_url: 'http://localhost:{port}/'"),
    )
}

fn downstream_config(port: u16, dir: &std::path::Path, issuer: &str) -> String {
    let users = format!(
        "users:\n\
         \x20 john:\n    displayname: John\n    password: '{pw}'\n    email: john@example.com\n    groups: [admins]\n\
         \x20 mallory:\n    displayname: Mallory\n    password: '{pw}'\n    email: mallory@example.com\n",
        pw = argon2_hash("downstream password")
    );
    std::fs::write(dir.join("users.yml"), users).unwrap();
    let extra = format!(
        "access_control:\n  default_policy: one_factor\nadmin:\n  require_two_factor: false\n\
         account_api:\n  enabled: true\n\
         upstream_oidc:\n  issuer: '{issuer}'\n  client_id: downstream\n  client_secret: '{DOWNSTREAM_SECRET}'\n\
         \x20 display_name: Upstream Corp\n  link_by_email: true\n"
    );
    config_yaml(port, dir, &extra)
}

struct Pair {
    upstream: Server,
    downstream: Server,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn start_pair() -> Pair {
    let (up_port, down_port) = (free_port(), free_port());
    let (up_dir, down_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let upstream = Server::start(Some(&upstream_config(up_port, up_dir.path())), up_port, &[]);
    let issuer = format!("http://localhost:{up_port}");
    let downstream = Server::start(Some(&downstream_config(down_port, down_dir.path(), &issuer)), down_port, &[]);
    Pair { upstream, downstream, _dirs: (up_dir, down_dir) }
}

impl Pair {
    /// A browser signed in upstream as `user`, sent to the downstream's sign-in start.
    /// Returns the callback URL the upstream redirected to.
    fn to_callback(&self, b: &mut Browser, user: &str) -> String {
        let up = format!("http://localhost:{}", self.upstream.port);
        let r = b.send(
            "POST",
            &format!("{up}/api/firstfactor"),
            &json!({"username": user, "password": "upstream password"}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = b.get("https://auth.example.com/login/oidc?rd=https%3A%2F%2Fapp.example.com%2Fhome");
        assert_eq!(r.status, 302, "{}", r.body);
        let authorize = location(&r);
        assert!(authorize.starts_with(&format!("{up}/")), "{authorize}");
        let q = query_of(&authorize);
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16, "{q:?}");
        assert!(q["scope"].split(' ').any(|s| s == "openid"));
        let sealed = b.cookie("example.com", "portcullis_upstream").expect("the sign-in's cookie");
        assert!(!sealed.contains(&q["state"]), "the state travels sealed");
        let r = b.get(&authorize);
        assert_eq!(r.status, 302, "{}", r.body);
        let callback = location(&r);
        assert!(callback.starts_with("https://auth.example.com/login/oidc/callback?"), "{callback}");
        callback
    }

    fn forward_auth(&self, b: &Browser) -> Response {
        let cookie =
            b.cookie("example.com", "authelia_session").map(|v| format!("authelia_session={v}")).unwrap_or_default();
        get(
            self.downstream.port,
            "/api/authz/forward-auth",
            &[
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-Uri", "/home"),
                ("Cookie", cookie.as_str()),
            ],
        )
    }

    fn admin(&self, user: &str) -> Browser {
        let mut b = Browser::new(self.downstream.port);
        let r = b.send(
            "POST",
            "https://auth.example.com/api/firstfactor",
            &json!({"username": user, "password": "downstream password"}).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        b
    }

    fn audit_events(&self) -> Vec<String> {
        let mut admin = self.admin("john");
        let r = admin.get("https://auth.example.com/api/admin/audit?limit=200");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    }
}

#[test]
fn a_second_portcullis_signs_users_in_linked_by_verified_address() {
    let pair = start_pair();
    let mut b = Browser::new(pair.downstream.port);

    let login = b.get("https://auth.example.com/login");
    assert!(login.body.contains("Sign in with Upstream Corp"), "{}", login.body);
    assert!(login.body.contains("data-upstream-login"));

    // Ulrich upstream has john's address, verified there: he becomes john here.
    let callback = pair.to_callback(&mut b, "ulrich");
    let r = b.get(&callback);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(location(&r), "https://app.example.com/home");
    assert!(b.cookie("example.com", "portcullis_upstream").is_none(), "the sign-in's cookie is taken");
    let info = b.get("https://auth.example.com/api/user/info");
    assert_eq!(info.json()["data"]["display_name"], "John", "{}", info.body);
    let allowed = pair.forward_auth(&b);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.header("remote-user"), Some("john"));

    // The same callback again, cookie and all: refused.
    let replay_cookie = {
        let mut again = Browser::new(pair.downstream.port);
        let callback = pair.to_callback(&mut again, "ulrich");
        let sealed = again.cookie("example.com", "portcullis_upstream").unwrap();
        let first = again.get(&callback);
        assert_eq!(first.status, 302, "{}", first.body);
        (callback, sealed)
    };
    let mut thief = Browser::new(pair.downstream.port);
    thief.jars.entry("example.com".into()).or_default().insert("portcullis_upstream".into(), replay_cookie.1);
    let r = thief.get(&replay_cookie.0);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("completed already"), "{}", r.body);
    assert!(thief.cookie("example.com", "authelia_session").is_none_or(|_| pair.forward_auth(&thief).status != 200));

    // No sign-in started in this browser.
    let mut other = Browser::new(pair.downstream.port);
    let r = other.get(&callback);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("not started here"), "{}", r.body);

    // A state that is not this browser's.
    let mut forged = Browser::new(pair.downstream.port);
    let callback = pair.to_callback(&mut forged, "ulrich");
    let code = &query_of(&callback)["code"];
    let r = forged.get(&format!("https://auth.example.com/login/oidc/callback?code={code}&state=someone-elses-state"));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("state does not match"), "{}", r.body);
    assert_ne!(pair.forward_auth(&forged).status, 200);

    // The provider's own refusal is shown, not followed.
    let mut refused = Browser::new(pair.downstream.port);
    let _ = pair.to_callback(&mut refused, "ulrich");
    let state = {
        let r = refused.get("https://auth.example.com/login/oidc");
        query_of(&location(&r))["state"].clone()
    };
    let r = refused.get(&format!(
        "https://auth.example.com/login/oidc/callback?error=access_denied&error_description=no&state={state}"
    ));
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("access_denied"), "{}", r.body);

    // An address nobody has here, linking by address only: a clear refusal.
    let mut stranger = Browser::new(pair.downstream.port);
    let callback = pair.to_callback(&mut stranger, "stranger");
    let r = stranger.get(&callback);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("no account here has the address stranger@elsewhere.org"), "{}", r.body);
    assert_ne!(pair.forward_auth(&stranger).status, 200);

    let events = pair.audit_events();
    assert_eq!(events.iter().filter(|e| *e == "upstream_oidc.linked").count(), 1, "{events:?}");
    assert!(events.iter().any(|e| e == "upstream_oidc.refused"), "{events:?}");
    let log = pair.downstream.stdout();
    assert!(!log.contains(DOWNSTREAM_SECRET), "the client secret is never logged");
}

#[test]
fn the_provider_settings_are_for_administrators_never_show_the_secret_and_can_create_users() {
    let pair = start_pair();
    let url = "https://auth.example.com/auth/provider/oidc";
    let mut anonymous = Browser::new(pair.downstream.port);
    assert_eq!(anonymous.get(url).status, 401);
    let mut mallory = pair.admin("mallory");
    assert_eq!(mallory.get(url).status, 403);
    assert_eq!(
        mallory.send("PUT", url, &json!({"issuer": "https://x.example.org", "client_id": "x"}).to_string()).status,
        403
    );

    let mut john = pair.admin("john");
    let r = john.get(url);
    assert_eq!(r.status, 200, "{}", r.body);
    let shown = r.json()["data"].clone();
    assert_eq!(shown["source"], "configuration");
    assert_eq!(shown["client_secret_set"], true);
    assert_eq!(shown["redirect_uri"], "https://auth.example.com/login/oidc/callback");
    assert!(!r.body.contains(DOWNSTREAM_SECRET));
    // An administrator's bearer token of the account API does as well as the session.
    let login = json!({"username": "john", "password": "downstream password"}).to_string();
    let token = request(pair.downstream.port, "POST", "/auth/local/login", &[], &login).json()["data"]["token"]
        .as_str()
        .expect("a bearer token")
        .to_string();
    let bearer = format!("Bearer {token}");
    let r = get(pair.downstream.port, "/auth/provider/oidc", &[("Authorization", bearer.as_str())]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["issuer"], shown["issuer"]);

    // Refused before storing: plain HTTP off loopback, a provider that is not there, junk.
    let bad = json!({"issuer": "http://id.example.org", "client_id": "downstream"});
    let r = john.send("PUT", url, &bad.to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("issuer"), "{}", r.body);
    let absent = json!({"issuer": format!("http://127.0.0.1:{}", free_port()), "client_id": "downstream"});
    let r = john.send("PUT", url, &absent.to_string());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(john.send("PUT", url, "{\"issuer\": 1}").status, 400);
    assert_eq!(john.get(url).json()["data"]["source"], "configuration", "nothing stored");

    // Stored: the secret kept (not sent), users created at first sign-in from now on.
    let issuer = format!("http://localhost:{}", pair.upstream.port);
    let change = json!({
        "issuer": issuer, "client_id": "downstream", "display_name": "Upstream Two",
        "create_users": true, "link_by_email": false, "allowed_email_domains": ["example.com"],
    });
    let r = john.send("PUT", url, &change.to_string());
    assert_eq!(r.status, 204, "{}", r.body);
    let shown = john.get(url).json()["data"].clone();
    assert_eq!(shown["source"], "database");
    assert_eq!(shown["updated_by"], "john");
    assert_eq!(shown["client_secret_set"], true);
    assert_eq!(shown["scopes"], json!(["openid", "profile", "email", "groups"]));
    assert!(anonymous.get("https://auth.example.com/login").body.contains("Sign in with Upstream Two"));

    let mut b = Browser::new(pair.downstream.port);
    let callback = pair.to_callback(&mut b, "newbie");
    let r = b.get(&callback);
    assert_eq!(r.status, 302, "{}", r.body);
    let info = b.get("https://auth.example.com/api/user/info").json();
    assert_eq!(info["data"]["display_name"], "New Bie");
    let created = john.get("https://auth.example.com/api/admin/users/newbie");
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.json()["data"]["groups"], json!(["dev", "testers"]));
    assert_eq!(created.json()["data"]["emails"], json!(["newbie@example.com"]));

    // Outside the allowed domains: refused even though users may be created.
    let mut stranger = Browser::new(pair.downstream.port);
    let callback = pair.to_callback(&mut stranger, "stranger");
    let r = stranger.get(&callback);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("not in a domain allowed"), "{}", r.body);

    let events = pair.audit_events();
    for event in ["admin.upstream_oidc.updated", "upstream_oidc.user_created"] {
        assert!(events.iter().any(|e| e == event), "{event}: {events:?}");
    }
}

/// What the hostile provider's next ID token is like.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Token {
    Genuine,
    WrongNonce,
    Expired,
    ForeignKey,
    OtherAudience,
    UnpublishedKeyId,
}

struct Hostile {
    port: u16,
    state: Arc<Mutex<HostileState>>,
}

struct HostileState {
    token: Token,
    nonce: String,
    /// Keys published, by key ID; the first signs.
    keys: Vec<(String, rsa::RsaPrivateKey)>,
    foreign: rsa::RsaPrivateKey,
    jwks_fetches: usize,
}

fn rsa_key() -> rsa::RsaPrivateKey {
    rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl HostileState {
    fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(kid, key)| {
                json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                       "n": b64(&key.n().to_bytes_be()), "e": b64(&key.e().to_bytes_be())})
            })
            .collect();
        json!({ "keys": keys })
    }

    fn id_token(&self, issuer: &str) -> String {
        use rsa::pkcs8::EncodePrivateKey;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let (mut kid, mut key) = (self.keys[0].0.clone(), &self.keys[0].1);
        let mut claims = json!({
            "iss": issuer, "sub": "hostile-subject", "aud": "downstream", "iat": now, "exp": now + 300,
            "nonce": self.nonce, "email": "john@example.com", "email_verified": true,
        });
        match self.token {
            Token::Genuine => {}
            Token::WrongNonce => claims["nonce"] = json!("not-the-nonce-that-was-sent"),
            Token::Expired => {
                claims["iat"] = json!(now - 3600);
                claims["exp"] = json!(now - 1800);
            }
            Token::ForeignKey => key = &self.foreign,
            Token::OtherAudience => claims["aud"] = json!("someone-else"),
            Token::UnpublishedKeyId => kid = "never-published".into(),
        }
        let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap())
            .unwrap()
    }
}

impl Hostile {
    fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(HostileState {
            token: Token::Genuine,
            nonce: String::new(),
            keys: vec![("first".into(), rsa_key())],
            foreign: rsa_key(),
            jwks_fetches: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let issuer = format!("http://127.0.0.1:{port}");
                let answer = {
                    let mut s = shared.lock().unwrap();
                    match path.as_str() {
                        "/.well-known/openid-configuration" => json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/authorize"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }),
                        "/jwks" => {
                            s.jwks_fetches += 1;
                            s.jwks()
                        }
                        "/token" => json!({
                            "access_token": "an-access-token", "token_type": "Bearer", "expires_in": 300,
                            "id_token": s.id_token(&issuer),
                        }),
                        _ => json!({}),
                    }
                    .to_string()
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        Hostile { port, state }
    }

    /// Starts a sign-in at `down` and answers its callback with a token of `kind`.
    fn sign_in(&self, down: u16, kind: Token) -> Response {
        let mut b = Browser::new(down);
        let r = b.get("https://auth.example.com/login/oidc");
        assert_eq!(r.status, 302, "{}", r.body);
        let q = query_of(&location(&r));
        {
            let mut s = self.state.lock().unwrap();
            s.token = kind;
            s.nonce = q["nonce"].clone();
        }
        b.get(&format!("https://auth.example.com/login/oidc/callback?code=any-code&state={}", q["state"]))
    }
}

#[test]
fn id_tokens_a_genuine_provider_would_never_send_are_refused_and_key_rotation_is_followed() {
    let hostile = Hostile::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("http://127.0.0.1:{}", hostile.port);
    let down = Server::start(Some(&downstream_config(port, dir.path(), &issuer)), port, &[]);

    let r = hostile.sign_in(port, Token::Genuine);
    assert_eq!(r.status, 302, "a genuine token signs in: {}", r.body);
    for (kind, why) in [
        (Token::WrongNonce, "nonce"),
        (Token::Expired, "Expired"),
        (Token::ForeignKey, "Signature"),
        (Token::OtherAudience, "audience"),
    ] {
        let r = hostile.sign_in(port, kind);
        assert_eq!(r.status, 401, "{kind:?}: {}", r.body);
        assert!(r.body.to_lowercase().contains(&why.to_lowercase()), "{kind:?}: {}", r.body);
        assert!(
            !r.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("set-cookie")
                && v.starts_with("authelia_session=")
                && !v.contains("Max-Age=0"))
                || r.status != 302
        );
    }

    // Rotation: the provider now signs with a new key, published beside the old one.
    let fetches = hostile.state.lock().unwrap().jwks_fetches;
    hostile.state.lock().unwrap().keys.insert(0, ("second".into(), rsa_key()));
    let r = hostile.sign_in(port, Token::Genuine);
    assert_eq!(r.status, 302, "the new key is fetched: {}", r.body);
    assert_eq!(hostile.state.lock().unwrap().jwks_fetches, fetches + 1, "fetched again once");

    // A key ID the provider never publishes: fetched again, still refused.
    let r = hostile.sign_in(port, Token::UnpublishedKeyId);
    assert_eq!(r.status, 401, "{}", r.body);
    drop(down);
}
