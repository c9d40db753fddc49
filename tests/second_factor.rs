//! Second factors over HTTP against the real binary: session elevation by an emailed code,
//! TOTP enrollment and sign-in (a replayed code is refused), recovery codes that burn,
//! WebAuthn security keys and passwordless passkeys with a software authenticator
//! (replayed and wrong-origin assertions refused), and the email sign-in code.

mod common;

use common::client::Client;
use common::*;
use portcullis::second_factor::totp::TotpService;
use portcullis::storage::TotpRecord;
use serde_json::json;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs_proto::{AllowCredentials, CreationChallengeResponse, RequestChallengeResponse};

const ORIGIN: &str = "https://auth.example.com";

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins]\n",
        argon2_hash("correct horse")
    )
}

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start(extra: &str) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
        let yaml = config_yaml(port, dir.path(), &format!("access_control:\n  default_policy: two_factor\n{extra}"));
        let server = Server::start(Some(&yaml), port, &[]);
        Setup { server, dir }
    }

    fn client(&self) -> Client {
        Client::new(self.server.port)
    }

    /// The code in the newest message of the file notifier.
    fn last_code(&self) -> String {
        last_code(self.dir.path())
    }

    fn messages(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("notifications.txt"))
            .map(|t| t.matches("----------------------------------------").count())
            .unwrap_or(0)
    }
}

fn login(c: &mut Client) {
    let r = c.json("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.level(), 1);
}

fn relogin(c: &mut Client) {
    assert_eq!(c.call("POST", "/api/logout", "").status, 200);
    assert_eq!(c.level(), 0);
    login(c);
}

fn elevate(s: &Setup, c: &mut Client) {
    let before = s.messages();
    let r = c.call("POST", "/api/user/session/elevation", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["data"]["delete_id"].as_str().unwrap().len() == 36);
    assert_eq!(s.messages(), before + 1, "one mail per code");
    let old_cookie = c.cookie.clone();
    let r = c.json("PUT", "/api/user/session/elevation", json!({"otc": s.last_code()}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(c.cookie, old_cookie, "elevation regenerates the session ID");
    let status = c.call("GET", "/api/user/session/elevation", "").json();
    assert_eq!(status["data"]["elevated"], true);
    assert!(status["data"]["expires"].as_i64().unwrap() > 500);
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn record(secret_b32: &str) -> TotpRecord {
    totp_record(secret_b32)
}

/// Enrolls TOTP; returns the setup, the step time the confirming code used, and the
/// recovery codes.
fn enroll_totp(s: &Setup, c: &mut Client) -> (TotpRecord, i64, Vec<String>) {
    let r = c.call("PUT", "/api/secondfactor/totp/register", "{}");
    assert_eq!(r.status, 403, "registering needs an elevated session: {}", r.body);
    elevate(s, c);
    let options = c.call("GET", "/api/secondfactor/totp/register", "").json();
    assert_eq!(options["data"]["algorithms"], json!(["SHA1"]));
    let bad = c.json("PUT", "/api/secondfactor/totp/register", json!({"algorithm": "SHA512"}));
    assert_eq!(bad.status, 400);
    let r = c.call("PUT", "/api/secondfactor/totp/register", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].clone();
    let secret = data["base32_secret"].as_str().unwrap().to_string();
    assert!(data["otpauth_url"].as_str().unwrap().contains(&format!("secret={secret}")));
    assert!(data["qr_code"].as_str().unwrap().starts_with("data:image/png;base64,"));
    let rec = record(&secret);
    let t = now();
    let code = TotpService::code_at(&rec, t).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = c.json("POST", "/api/secondfactor/totp/register", json!({"token": wrong}));
    assert_eq!(r.status, 400, "a wrong confirming code stores nothing");
    let before = s.messages();
    let r = c.json("POST", "/api/secondfactor/totp/register", json!({"token": code}));
    assert_eq!(r.status, 200, "{}", r.body);
    // The security mail (sent after the answer) says where to make recovery codes one can
    // see, for frontends that do not show these.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.messages() == before {
        assert!(std::time::Instant::now() < deadline, "no mail about the new authenticator app");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mail = std::fs::read_to_string(s.dir.path().join("notifications.txt")).unwrap();
    let newest = mail.rsplit("----------------------------------------").find(|b| !b.trim().is_empty()).unwrap();
    assert!(newest.contains("An authenticator app was added"), "{newest}");
    assert!(newest.contains("https://auth.example.com/profile/totp/recovery-codes"), "{newest}");
    let codes: Vec<String> = r.json()["data"]["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (rec, t, codes)
}

#[test]
fn totp_enrollment_sign_in_and_replay() {
    let s = Setup::start("");
    let mut c = s.client();
    login(&mut c);
    let (rec, t, _) = enroll_totp(&s, &mut c);
    let info = c.call("GET", "/api/user/info", "").json();
    assert_eq!(info["data"]["has_totp"], true);
    assert_eq!(info["data"]["method"], "totp");
    assert_eq!(info["data"]["recovery_codes_remaining"], 10);
    let cfg = c.call("GET", "/api/secondfactor/totp", "").json();
    assert_eq!((cfg["data"]["algorithm"].as_str(), cfg["data"]["digits"].as_i64()), (Some("SHA1"), Some(6)));
    assert!(cfg["data"].get("secret").is_none() && !cfg.to_string().contains(&format!("{:?}", rec.secret)));

    relogin(&mut c);
    // The enrollment code is spent.
    let used = TotpService::code_at(&rec, t).unwrap();
    let r = c.json("POST", "/api/secondfactor/totp", json!({"token": used}));
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(c.level(), 1);
    // The next period's code is within the allowed skew.
    let next = TotpService::code_at(&rec, t + 30).unwrap();
    let before = c.cookie.clone();
    let r = c.json("POST", "/api/secondfactor/totp", json!({"token": next, "targetURL": "https://app.example.com/x"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["redirect"], "https://app.example.com/x");
    assert_ne!(c.cookie, before, "the second factor regenerates the session ID");
    assert_eq!(c.level(), 2);
    // Replaying it in another session fails.
    relogin(&mut c);
    let r = c.json("POST", "/api/secondfactor/totp", json!({"token": next}));
    assert_eq!(r.status, 401, "replayed code: {}", r.body);
    assert_eq!(c.level(), 1);
    // Unsafe targets are not echoed back.
    let third = TotpService::code_at(&rec, t - 30).unwrap();
    let r = c.json("POST", "/api/secondfactor/totp", json!({"token": third, "targetURL": "https://evil.example.net/"}));
    if r.status == 200 {
        assert!(r.json().get("data").is_none(), "{}", r.body);
    }
}

#[test]
fn recovery_codes_burn_and_removing_totp_needs_elevation() {
    let s = Setup::start("");
    let mut c = s.client();
    login(&mut c);
    let (_, _, codes) = enroll_totp(&s, &mut c);
    relogin(&mut c);
    let typed = codes[0].to_lowercase().replace('-', " ");
    let r = c.json("POST", "/api/secondfactor/recovery-codes", json!({"token": typed}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.level(), 2);
    relogin(&mut c);
    let r = c.json("POST", "/api/secondfactor/recovery-codes", json!({"token": codes[0]}));
    assert_eq!(r.status, 401, "a burned code fails: {}", r.body);
    assert_eq!(c.call("GET", "/api/secondfactor/recovery-codes", "").json()["data"]["remaining"], 9);
    assert_eq!(c.call("PUT", "/api/secondfactor/recovery-codes", "").status, 403, "regenerating needs elevation");
    assert_eq!(c.call("DELETE", "/api/secondfactor/totp", "").status, 403, "removing needs elevation");
    elevate(&s, &mut c);
    let fresh = c.call("PUT", "/api/secondfactor/recovery-codes", "").json();
    assert_eq!(fresh["data"]["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(
        c.json("POST", "/api/secondfactor/recovery-codes", json!({"token": codes[1]})).status,
        401,
        "old set gone"
    );
    assert_eq!(c.call("DELETE", "/api/secondfactor/totp", "").status, 200);
    assert_eq!(c.call("GET", "/api/secondfactor/totp", "").status, 404);
    assert_eq!(c.call("GET", "/api/user/info", "").json()["data"]["has_totp"], false);
}

#[test]
fn elevation_codes_are_single_use_and_revocable() {
    let s = Setup::start("");
    let mut c = s.client();
    assert_eq!(c.call("POST", "/api/user/session/elevation", "").status, 403, "needs a session");
    login(&mut c);
    let r = c.call("POST", "/api/user/session/elevation", "");
    let id = r.json()["data"]["delete_id"].as_str().unwrap().to_string();
    let code = s.last_code();
    assert_eq!(c.json("PUT", "/api/user/session/elevation", json!({"otc": "WRONGCODE"})).status, 401);
    assert_eq!(c.call("DELETE", &format!("/api/user/session/elevation/{id}"), "").status, 200);
    let r = c.json("PUT", "/api/user/session/elevation", json!({"otc": code}));
    assert_eq!(r.status, 401, "a revoked code fails: {}", r.body);
    assert_eq!(c.call("GET", "/api/user/session/elevation", "").json()["data"]["elevated"], false);
    assert_eq!(c.call("DELETE", "/api/user/session/elevation/not-a-uuid", "").status, 400);
    // A fresh code works once.
    c.call("POST", "/api/user/session/elevation", "");
    let code = s.last_code();
    assert_eq!(c.json("PUT", "/api/user/session/elevation", json!({"otc": code.to_lowercase()})).status, 200);
    c.call("POST", "/api/user/session/elevation", "");
    let newer = s.last_code();
    assert_eq!(c.json("PUT", "/api/user/session/elevation", json!({"otc": newer})).status, 200);
    assert_eq!(c.json("PUT", "/api/user/session/elevation", json!({"otc": newer})).status, 400, "no code pending");
    // The mail does not leak into the log.
    assert!(!s.server.stdout().contains(&newer));
}

fn register_key(s: &Setup, c: &mut Client, authenticator: &mut SoftPasskey, description: &str) -> serde_json::Value {
    let r = c.json("PUT", "/api/secondfactor/webauthn/credential/register", json!({"description": description}));
    if r.status == 403 {
        elevate(s, c);
        return register_key(s, c, authenticator, description);
    }
    assert_eq!(r.status, 200, "{}", r.body);
    let options_json = r.json()["data"].clone();
    let options: CreationChallengeResponse = serde_json::from_value(options_json.clone()).unwrap();
    let credential = authenticator.do_registration(url::Url::parse(ORIGIN).unwrap(), options).unwrap();
    let r =
        c.call("POST", "/api/secondfactor/webauthn/credential/register", &serde_json::to_string(&credential).unwrap());
    assert_eq!(r.status, 201, "{}", r.body);
    options_json
}

#[test]
fn webauthn_security_key_registration_and_assertion() {
    let s = Setup::start("");
    let mut c = s.client();
    login(&mut c);
    let mut key = SoftPasskey::new(true);
    let options = register_key(&s, &mut c, &mut key, "Soft key");
    assert_eq!(options["publicKey"]["rp"]["id"], "example.com");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["userVerification"], "required");
    let dup = c.json("PUT", "/api/secondfactor/webauthn/credential/register", json!({"description": "soft KEY"}));
    assert_eq!(dup.status, 409);
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["description"], "Soft key");
    assert_eq!(list["data"][0]["rpid"], "example.com");
    // Every field Authelia's frontend reads, with the values this registration gives.
    let item = &list["data"][0];
    for field in ["attestation_format", "attachment", "legacy", "present", "backup_eligible", "backup_state"] {
        assert!(item.get(field).is_some(), "{field} in {item}");
    }
    assert!(item["transports"].is_array(), "{item}");
    assert_eq!((item["present"].as_bool(), item["verified"].as_bool()), (Some(true), Some(true)), "{item}");
    assert_eq!(item["legacy"], false);
    use base64::Engine;
    let cose = base64::engine::general_purpose::STANDARD.decode(item["public_key"].as_str().unwrap()).unwrap();
    // A CBOR map whose kty (1) is EC2 (2) and alg (3) is ES256 (-7): a5 01 02 03 26 ...
    assert_eq!(&cose[..5], &[0xa5, 0x01, 0x02, 0x03, 0x26], "{cose:02x?}");
    assert_eq!(cose.len(), 77, "P-256 COSE key with 32-byte coordinates");
    let id = list["data"][0]["id"].as_i64().unwrap();

    relogin(&mut c);
    let r = c.call("GET", "/api/secondfactor/webauthn", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    let assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    let body = json!({"response": assertion, "targetURL": "https://app.example.com/"}).to_string();
    let r = c.call("POST", "/api/secondfactor/webauthn", &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["redirect"], "https://app.example.com/");
    assert_eq!(c.level(), 2);
    let used = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert!(used["data"][0]["last_used_at"].is_string());

    // The same assertion again: no pending challenge, then a fresh challenge it does not answer.
    relogin(&mut c);
    assert_eq!(c.call("POST", "/api/secondfactor/webauthn", &body).status, 400);
    assert_eq!(c.call("GET", "/api/secondfactor/webauthn", "").status, 200);
    assert_eq!(c.call("POST", "/api/secondfactor/webauthn", &body).status, 401, "replayed assertion");
    assert_eq!(c.level(), 1);

    // An assertion made for another origin is refused.
    let r = c.call("GET", "/api/secondfactor/webauthn", "");
    let challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    let forged =
        key.perform_auth(url::Url::parse("https://evil.example.net").unwrap(), challenge.public_key, 60_000).unwrap();
    let r = c.call("POST", "/api/secondfactor/webauthn", &json!({"response": forged}).to_string());
    assert_eq!(r.status, 401, "wrong origin: {}", r.body);
    assert_eq!(c.level(), 1);

    // Rename and delete need elevation.
    let path = format!("/api/secondfactor/webauthn/credential/{id}");
    assert_eq!(c.json("PUT", &path, json!({"description": "Renamed"})).status, 403);
    elevate(&s, &mut c);
    assert_eq!(c.json("PUT", &path, json!({"description": "Renamed"})).status, 200);
    assert_eq!(c.call("GET", "/api/secondfactor/webauthn/credentials", "").json()["data"][0]["description"], "Renamed");
    assert_eq!(c.call("DELETE", &path, "").status, 200);
    assert_eq!(c.call("DELETE", &path, "").status, 404);
    assert_eq!(c.call("GET", "/api/user/info", "").json()["data"]["has_webauthn"], false);
}

#[test]
fn passwordless_passkey_login() {
    let s =
        Setup::start("webauthn:\n  enable_passkey_login: true\n  experimental_enable_passkey_uv_two_factors: true\n");
    let mut c = s.client();
    login(&mut c);
    let mut key = SoftPasskey::new(true);
    let options = register_key(&s, &mut c, &mut key, "Phone");
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    let kid = list["data"][0]["kid"].as_str().unwrap().to_string();
    assert_eq!(c.call("POST", "/api/logout", "").status, 200);

    // Anonymous: the challenge's state goes to the browser in a sealed cookie; no session.
    let mut anonymous = s.client();
    let r = anonymous.call("GET", "/api/firstfactor/passkey", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(anonymous.cookie.is_none(), "an anonymous challenge creates no session");
    let sealed = anonymous.others.get("portcullis_passkey").cloned().expect("the challenge's cookie");
    let mut challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    assert!(challenge.public_key.allow_credentials.is_empty(), "a discoverable login names no credential");
    // The software authenticator cannot hold discoverable credentials: name the one it has
    // and add the user handle a platform authenticator would return (it is not signed).
    let allowed: AllowCredentials = serde_json::from_value(json!({"type": "public-key", "id": kid})).unwrap();
    challenge.public_key.allow_credentials = vec![allowed];
    let mut assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    use base64::Engine;
    assertion.response.user_handle =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&user_handle).unwrap());
    let body = json!({"response": assertion, "targetURL": "https://app.example.com/", "keepMeLoggedIn": false});
    let r = anonymous.json("POST", "/api/firstfactor/passkey", body.clone());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["redirect"], "https://app.example.com/");
    assert_eq!(anonymous.level(), 2, "a user-verified passkey counts as two factors here");
    let state = anonymous.call("GET", "/api/state", "").json();
    assert_eq!(state["data"]["username"], "john");
    assert!(!anonymous.others.contains_key("portcullis_passkey"), "the challenge is taken");

    // The same cookie and assertion again (a stolen pair) do not log in twice. (This
    // authenticator counts signatures, so its counter refuses the replay too; for
    // authenticators that do not count, the claim in the session store does: see the
    // store contract in tests/session_store.rs.)
    let mut thief = s.client();
    thief.others.insert("portcullis_passkey".into(), sealed);
    let r = thief.json("POST", "/api/firstfactor/passkey", body.clone());
    assert!(matches!(r.status, 400 | 401), "{}", r.body);
    assert_eq!(thief.level(), 0);

    // Replaying the login from a new anonymous session fails.
    let mut other = s.client();
    assert_eq!(other.call("GET", "/api/firstfactor/passkey", "").status, 200);
    let r = other.json("POST", "/api/firstfactor/passkey", body);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(other.level(), 0);
}

#[test]
fn email_code_as_second_factor() {
    let s = Setup::start("email_otp:\n  enable: true\n  characters: 6\n");
    let mut c = s.client();
    login(&mut c);
    assert_eq!(
        c.call("GET", "/api/configuration", "").json()["data"]["available_methods"],
        json!(["totp", "webauthn", "email"])
    );
    assert_eq!(c.json("POST", "/api/user/info/2fa_method", json!({"method": "email"})).status, 200);
    assert_eq!(c.json("POST", "/api/user/info/2fa_method", json!({"method": "duo"})).status, 400);
    assert_eq!(c.call("GET", "/api/user/info", "").json()["data"]["method"], "email");
    assert_eq!(c.json("POST", "/api/secondfactor/email", json!({"token": "ABCDEF"})).status, 400, "nothing sent yet");
    assert_eq!(c.call("PUT", "/api/secondfactor/email", "").status, 200);
    let code = s.last_code();
    assert_eq!(code.len(), 6);
    assert_eq!(c.json("POST", "/api/secondfactor/email", json!({"token": "ZZZZZZ"})).status, 401);
    assert_eq!(c.level(), 1);
    let r = c.json("POST", "/api/secondfactor/email", json!({"token": code}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.level(), 2);
}

#[test]
fn a_security_key_whose_counter_goes_backwards_is_refused_and_flagged() {
    use portcullis::config::schema::{LocalStorage, Storage as StorageConfig};
    use portcullis::config::types::Secret;
    let s = Setup::start("");
    let mut c = s.client();
    login(&mut c);
    let mut key = SoftPasskey::new(true);
    register_key(&s, &mut c, &mut key, "Soft key");
    // Pretend the server already saw a much higher counter (as if a clone had been used).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = StorageConfig {
        encryption_key: Secret::new("a-test-encryption-key-that-is-long-enough"),
        local: Some(LocalStorage { path: Some(s.dir.path().join("db.sqlite3").display().to_string()) }),
        ..Default::default()
    };
    let storage = runtime.block_on(portcullis::storage::Storage::open(&config, None)).unwrap();
    let stored = runtime.block_on(storage.webauthn_credentials("john")).unwrap().remove(0);
    let mut passkey: serde_json::Value = serde_json::from_slice(&stored.credential).unwrap();
    passkey["cred"]["counter"] = json!(1000);
    runtime.block_on(storage.webauthn_used(stored.id, serde_json::to_vec(&passkey).unwrap(), 1000, now())).unwrap();

    relogin(&mut c);
    let r = c.call("GET", "/api/secondfactor/webauthn", "");
    let challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    let assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    let r = c.call("POST", "/api/secondfactor/webauthn", &json!({"response": assertion}).to_string());
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(c.level(), 1);
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert_eq!(list["data"][0]["clone_warning"], true);
}

#[test]
fn secrets_never_reach_the_log() {
    // Debug level: the most the log ever says.
    let s = Setup::start("log:\n  level: debug\n");
    let mut c = s.client();
    login(&mut c);
    let session_after_login = c.cookie.clone().unwrap();
    let (rec, t, codes) = enroll_totp(&s, &mut c);
    let elevation_code = s.last_code();
    relogin(&mut c);
    let next = TotpService::code_at(&rec, t + 30).unwrap();
    assert_eq!(c.json("POST", "/api/secondfactor/totp", json!({"token": next})).status, 200);
    let session_2fa = c.cookie.clone().unwrap();
    relogin(&mut c);
    assert_eq!(c.json("POST", "/api/secondfactor/recovery-codes", json!({"token": codes[0]})).status, 200);
    assert_eq!(c.json("POST", "/api/firstfactor", json!({"username": "john", "password": "wrong horse"})).status, 401);
    c.json("POST", "/api/reset-password/identity/start", json!({"username": "john"}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let reset_token = loop {
        let text = std::fs::read_to_string(s.dir.path().join("notifications.txt")).unwrap_or_default();
        if let Some(i) = text.find("token=") {
            break text[i + 6..].split_whitespace().next().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(c.json("POST", "/api/reset-password/identity/finish", json!({"token": reset_token})).status, 200);

    let log = s.server.wait_for_log("password reset link redeemed");
    assert!(log.contains("DEBUG") || log.contains("debug"), "the log ran at debug level");
    let secret_b32 = totp_rs::Secret::from(rec.secret.clone()).to_base32();
    let session_ids = [session_after_login, session_2fa].map(|c| c.split_once('=').unwrap().1.to_string());
    let secrets: Vec<(&str, String)> = vec![
        ("password", "correct horse".into()),
        ("wrong password", "wrong horse".into()),
        ("TOTP secret", secret_b32),
        ("TOTP code", next),
        ("recovery code", codes[0].clone()),
        ("elevation code", elevation_code),
        ("reset token", reset_token),
        ("session ID", session_ids[0].clone()),
        ("session ID after 2FA", session_ids[1].clone()),
    ];
    for (what, value) in secrets {
        assert!(!log.contains(&value), "the {what} appears in the log");
    }
}

/// A passkey login on a passkey key (user handle added, as in `passwordless_passkey_login`).
fn passkey_login(s: &Setup, key: &mut SoftPasskey, kid: &str, user_handle: &str) -> Client {
    let mut c = s.client();
    let r = c.call("GET", "/api/firstfactor/passkey", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    let allowed: AllowCredentials = serde_json::from_value(json!({"type": "public-key", "id": kid})).unwrap();
    challenge.public_key.allow_credentials = vec![allowed];
    let mut assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    use base64::Engine;
    assertion.response.user_handle =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(user_handle).unwrap());
    let r = c.json("POST", "/api/firstfactor/passkey", json!({"response": assertion}));
    assert_eq!(r.status, 200, "{}", r.body);
    c
}

#[test]
fn the_password_after_a_passkey_is_the_second_factor_and_reauthentication_renews_the_first() {
    let s = Setup::start("webauthn:\n  enable_passkey_login: true\n  experimental_enable_passkey_upgrade: true\n");
    let mut c = s.client();
    login(&mut c);
    // A password session may not use the password as its second factor.
    let r = c.json("POST", "/api/secondfactor/password", json!({"password": "correct horse"}));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(c.level(), 1);

    let mut key = SoftPasskey::new(true);
    let options = register_key(&s, &mut c, &mut key, "Phone");
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    let kid = list["data"][0]["kid"].as_str().unwrap().to_string();

    let mut p = passkey_login(&s, &mut key, &kid, &user_handle);
    assert_eq!(p.level(), 1, "without experimental_enable_passkey_uv_two_factors a passkey is one factor");
    let wrong = p.json("POST", "/api/secondfactor/password", json!({"password": "wrong"}));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(p.level(), 1);
    let before = p.cookie.clone();
    let target = "https://app.example.com/";
    let r = p.json("POST", "/api/secondfactor/password", json!({"password": "correct horse", "targetURL": target}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["redirect"], target);
    assert_eq!(p.level(), 2);
    assert_ne!(p.cookie, before, "a new session ID at the new level");
    let again = p.json("POST", "/api/secondfactor/password", json!({"password": "correct horse"}));
    assert_eq!(again.status, 403, "once two factors are reached it is no longer a passkey-only session");

    // Reauthentication: the session's own password again, a new ID, the level kept.
    let mut anonymous = s.client();
    let r = anonymous.json("POST", "/api/firstfactor/reauthenticate", json!({"password": "correct horse"}));
    assert_eq!(r.status, 403, "nobody to reauthenticate (as every call needing a login): {}", r.body);
    let wrong = p.json("POST", "/api/firstfactor/reauthenticate", json!({"password": "wrong"}));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let before = p.cookie.clone();
    let r = p.json("POST", "/api/firstfactor/reauthenticate", json!({"password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(p.cookie, before);
    assert_eq!(p.level(), 2, "the second factor is kept");
}
