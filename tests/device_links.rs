//! Device-addition links against the real binary: a signed-in user (or an administrator,
//! for someone else) makes a link; a second client with no session opens it, registers a
//! passkey through its JSON steps with a software authenticator, and then signs in
//! passwordlessly with it; the first client sees the new credential. Reused, malformed,
//! unknown and expired links answer 404; a cross-origin finish is refused; both events
//! are in the audit trail.

mod common;

use common::client::Client;
use common::*;
use portcullis::config::schema::{LocalStorage, Storage as StorageConfig};
use portcullis::config::types::Secret;
use portcullis::flows::device_links;
use portcullis::storage::{DeviceLinkRecord, Storage};
use serde_json::json;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, CreationChallengeResponse, RequestChallengeResponse};

const ORIGIN: &str = "https://auth.example.com";
const KEY: &str = "a-test-encryption-key-that-is-long-enough";

fn users_yaml() -> String {
    let hash = argon2_hash("correct horse");
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{hash}'\n    email: john@example.com\n    groups: [admins]\n  \
         mary:\n    displayname: Mary Major\n    password: '{hash}'\n    email: mary@example.com\n    groups: [dev]\n"
    )
}

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
        let extra = "access_control:\n  default_policy: one_factor\nwebauthn:\n  enable_passkey_login: true\n\
                     admin:\n  require_two_factor: false\n";
        let yaml = config_yaml(port, dir.path(), extra);
        let server = Server::start(Some(&yaml), port, &[]);
        Setup { server, dir }
    }

    fn client(&self) -> Client {
        Client::new(self.server.port)
    }

    fn signed_in(&self, username: &str) -> Client {
        let mut c = self.client();
        let r = c.json("POST", "/api/firstfactor", json!({"username": username, "password": "correct horse"}));
        assert_eq!(r.status, 200, "{}", r.body);
        c
    }

    /// The server's database, opened beside it.
    fn storage(&self, runtime: &tokio::runtime::Runtime) -> Storage {
        let config = StorageConfig {
            encryption_key: Secret::new(KEY),
            local: Some(LocalStorage { path: Some(self.dir.path().join("db.sqlite3").display().to_string()) }),
            ..Default::default()
        };
        runtime.block_on(Storage::open(&config, None)).unwrap()
    }
}

fn create(c: &mut Client, body: serde_json::Value) -> common::Response {
    c.json("POST", "/auth/api/create-link", body)
}

/// The token of a new link for the caller.
fn new_link(c: &mut Client) -> String {
    let r = create(c, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["data"]["token"].as_str().unwrap().to_string()
}

/// The creation options as the software authenticator takes them: it cannot hold
/// discoverable credentials, so the requirement (checked as sent) is dropped here, as a
/// platform authenticator would meet it.
fn soft(options: &serde_json::Value) -> CreationChallengeResponse {
    assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required", "{options}");
    let mut options = options.clone();
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    serde_json::from_value(options).unwrap()
}

/// Registers `key` through the link `token` from `device`; the creation options.
fn register(device: &mut Client, key: &mut SoftPasskey, token: &str) -> serde_json::Value {
    let r = device.call("PUT", &format!("/auth/{token}/begin"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let options_json = r.json()["data"].clone();
    let credential = key.do_registration(url::Url::parse(ORIGIN).unwrap(), soft(&options_json)).unwrap();
    let mut body = serde_json::to_value(&credential).unwrap();
    body["description"] = json!("Tablet");
    let r = device.json("POST", &format!("/auth/{token}/finish"), body);
    assert_eq!(r.status, 200, "{}", r.body);
    options_json
}

#[test]
fn a_link_adds_a_passkey_on_another_device_which_then_signs_in_with_it() {
    let s = Setup::start();
    let mut john = s.signed_in("john");

    // Made by the signed-in user: a URL on the portal ending in the token.
    let r = create(&mut john, json!({}));
    assert_eq!(r.status, 200, "{}", r.body);
    let data = r.json()["data"].clone();
    let token = data["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("pdl_") && token.len() == 36, "{token}");
    assert!(token[4..].bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
    assert_eq!(data["url"], format!("https://auth.example.com/auth/{token}"));
    let expires_at = data["expires_at"].as_i64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now + 14 * 60..=now + 16 * 60).contains(&expires_at), "15 minutes: {expires_at} vs {now}");

    // The new device: no session; user-info describes the link it holds.
    let mut device = s.client();
    let described = device.json("POST", "/auth/api/user-info", json!({"token": token}));
    assert_eq!(described.status, 200, "{}", described.body);
    assert_eq!(described.json()["data"]["device_link"]["username"], "john");
    assert_eq!(described.json()["data"]["device_link"]["expires_at"], expires_at);
    assert_eq!(device.json("POST", "/auth/api/user-info", json!({"token": "pdl_nope"})).status, 404);
    // It opens the page and registers a passkey.
    let page = device.call("GET", &format!("/auth/{token}"), "");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Add a passkey to John Doe&#x27;s account")
            || page.body.contains("Add a passkey to John Doe's account"),
        "{}",
        page.body
    );
    // The portal's ceremony script, pointed at this link's steps.
    assert!(page.body.contains("passkey."), "the page's script: {}", page.body);
    assert!(page.body.contains("data-device-link"), "the link's box: {}", page.body);
    assert!(device.cookie.is_none(), "opening a link creates no session");
    let mut key = SoftPasskey::new(true);
    let options = register(&mut device, &mut key, &token);
    assert_eq!(options["publicKey"]["rp"]["id"], "example.com");
    assert_eq!(options["publicKey"]["user"]["name"], "john");
    assert_eq!(options["publicKey"]["authenticatorSelection"]["residentKey"], "required");
    assert!(device.cookie.is_none(), "the link does not sign the device in");
    assert_eq!(device.level(), 0);
    assert!(!device.others.contains_key("portcullis_device_link"), "the ceremony's cookie is taken");

    // The first device sees the new credential.
    let list = john.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    let items = list["data"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["description"], "Tablet");
    assert_eq!(items[0]["discoverable"], true);
    let kid = items[0]["kid"].as_str().unwrap().to_string();

    // The new device signs in passwordlessly with it.
    let r = device.call("GET", "/api/firstfactor/passkey", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let mut challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    // The software authenticator holds no discoverable credentials: name the one it has
    // and add the user handle a platform authenticator would return.
    let allowed: AllowCredentials = serde_json::from_value(json!({"type": "public-key", "id": kid})).unwrap();
    challenge.public_key.allow_credentials = vec![allowed];
    let mut assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    use base64::Engine;
    let user_handle = options["publicKey"]["user"]["id"].as_str().unwrap();
    assertion.response.user_handle =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(user_handle).unwrap());
    let r = device.json("POST", "/api/firstfactor/passkey", json!({"response": assertion}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(device.level() >= 1);
    assert_eq!(device.call("GET", "/api/state", "").json()["data"]["username"], "john");

    // Used: every step of the link is 404 now.
    let mut other = s.client();
    assert_eq!(other.call("GET", &format!("/auth/{token}"), "").status, 404);
    assert_eq!(other.call("PUT", &format!("/auth/{token}/begin"), "").status, 404);

    // Both events are in the audit trail.
    let audit = john.call("GET", "/api/admin/audit", "");
    assert_eq!(audit.status, 200, "{}", audit.body);
    for event in ["device_link.created", "device_link.used"] {
        assert!(audit.body.contains(event), "{event} in {}", audit.body);
    }
}

#[test]
fn who_may_make_links_and_for_whom() {
    let s = Setup::start();
    let mut anonymous = s.client();
    assert_eq!(create(&mut anonymous, json!({})).status, 401);

    let mut mary = s.signed_in("mary");
    let r = create(&mut mary, json!({"username": "john"}));
    assert_eq!(r.status, 403, "not an administrator: {}", r.body);
    let own = create(&mut mary, json!({"username": "mary"}));
    assert_eq!(own.status, 200, "naming oneself is fine: {}", own.body);
    assert_eq!(create(&mut mary, json!({"bogus": 1})).status, 400);

    // An administrator, for another user: the link's page names that user.
    let mut john = s.signed_in("john");
    let r = create(&mut john, json!({"username": "mary"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["data"]["token"].as_str().unwrap().to_string();
    let page = s.client().call("GET", &format!("/auth/{token}"), "");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Mary Major"), "{}", page.body);
    assert_eq!(create(&mut john, json!({"username": "nobody"})).status, 404);

    // At most five unused links per account.
    for _ in 0..3 {
        assert_eq!(create(&mut mary, json!({})).status, 200);
    }
    let r = create(&mut mary, json!({}));
    assert_eq!(r.status, 409, "{}", r.body);
}

#[test]
fn bad_links_are_404_and_finish_is_bound_to_its_link_and_origin() {
    let s = Setup::start();
    let mut john = s.signed_in("john");
    let mut device = s.client();

    // Malformed and unknown.
    for bad in ["pdl_short", "xyz", "pdl_0123456789abcdefghijklmnopqrstuv1", "pdl_0123456789abcdefghijklmnopqrst-v"] {
        assert_eq!(device.call("GET", &format!("/auth/{bad}"), "").status, 404, "{bad}");
        assert_eq!(device.call("PUT", &format!("/auth/{bad}/begin"), "").status, 404, "{bad}");
        assert_eq!(device.call("POST", &format!("/auth/{bad}/finish"), "{}").status, 404, "{bad}");
    }
    let unknown = "pdl_0123456789abcdefghijklmnopqrstuv";
    let page = device.call("GET", &format!("/auth/{unknown}"), "");
    assert_eq!(page.status, 404);
    assert!(page.body.contains("The link is invalid, has expired or was already used"), "{}", page.body);
    assert_eq!(device.call("PUT", &format!("/auth/{unknown}/begin"), "").status, 404);

    // Expired: a row whose lifetime is over, written beside the server.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let storage = s.storage(&runtime);
    let expired = "pdl_Expired0123456789abcdefghijklmno";
    assert!(device_links::is_well_formed(expired));
    let record = DeviceLinkRecord {
        id: 0,
        token_hash: device_links::token_hash(&storage, expired),
        username: "john".into(),
        created_by: "john".into(),
        created_at: 1_000,
        expires_at: 2_000,
        used_at: None,
    };
    runtime.block_on(storage.device_link_insert(record)).unwrap();
    assert_eq!(device.call("GET", &format!("/auth/{expired}"), "").status, 404);
    assert_eq!(device.call("PUT", &format!("/auth/{expired}/begin"), "").status, 404);

    // A registration begun with one link does not finish with another.
    let first = new_link(&mut john);
    let second = new_link(&mut john);
    let mut key = SoftPasskey::new(true);
    let r = device.call("PUT", &format!("/auth/{first}/begin"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let credential = key.do_registration(url::Url::parse(ORIGIN).unwrap(), soft(&r.json()["data"])).unwrap();
    let body = serde_json::to_string(&credential).unwrap();
    let r = device.call("POST", &format!("/auth/{second}/finish"), &body);
    assert_eq!(r.status, 400, "{}", r.body);

    // A cross-origin finish is refused before anything else.
    let mut key = SoftPasskey::new(true);
    let r = device.call("PUT", &format!("/auth/{first}/begin"), "");
    assert_eq!(r.status, 200);
    let credential = key.do_registration(url::Url::parse(ORIGIN).unwrap(), soft(&r.json()["data"])).unwrap();
    let body = serde_json::to_string(&credential).unwrap();
    let jar: Vec<String> = device.others.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let jar = jar.join("; ");
    let path = format!("/auth/{first}/finish");
    let r = request(s.server.port, "POST", &path, &[("Origin", "https://evil.example.net"), ("Cookie", &jar)], &body);
    assert_eq!(r.status, 403, "{}", r.body);
    let r = request(s.server.port, "POST", &path, &[("Sec-Fetch-Site", "cross-site"), ("Cookie", &jar)], &body);
    assert_eq!(r.status, 403, "{}", r.body);
    // A form post (what a foreign page can send without asking) is refused too.
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", jar.as_str())];
    assert_eq!(request(s.server.port, "POST", &path, &form, "a=b").status, 415);
    // The same answer from the page's own origin is accepted, once.
    let r = device.call("POST", &path, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(device.call("GET", &format!("/auth/{first}"), "").status, 404, "used");
    assert_eq!(device.call("PUT", &format!("/auth/{first}/begin"), "").status, 404, "used");
}
