//! The LDAP users backend against a real OpenLDAP server (slapd) started by each test:
//! logins by binding as the user, groups in the identity headers (group search by filter
//! and by memberOf), injection attempts in the username, StartTLS and LDAPS verified
//! against a test CA, password change and reset through the directory, the admin API's
//! reads and refused writes, and slapd stopped and restarted under a running server.

mod common;

use common::client::Client;
use common::slapd::{SERVICE_DN, SERVICE_PASSWORD, Slapd, TLS_NAME};
use common::*;
use serde_json::json;

const RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: app.example.com, policy: one_factor}
";

/// A server whose users are in `slapd`, reached as `ldap` says (YAML lines under
/// `authentication_backend.ldap`, four spaces in), with `extra` top-level YAML.
fn start(ldap: &str, extra: &str) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = format!("authentication_backend:\n  file:\n    path: '{}/users.yml'\n", dir.path().display());
    let backend = format!(
        "authentication_backend:\n  ldap:\n    base_dn: 'dc=example,dc=com'\n    user: '{SERVICE_DN}'\n    password: '{SERVICE_PASSWORD}'\n{ldap}"
    );
    let yaml = config_yaml(port, dir.path(), &format!("{RULES}\n{extra}"));
    assert!(yaml.contains(&file));
    let yaml = yaml.replace(&file, &backend);
    (Server::start(Some(&yaml), port, &[]), dir)
}

/// lldap's defaults fit the test tree: people under ou=people, groupOfNames under ou=groups.
fn plain(slapd: &Slapd) -> String {
    format!("    implementation: lldap\n    address: 'ldap://127.0.0.1:{}'\n", slapd.port)
}

fn login(port: u16, username: &str, password: &str) -> common::Response {
    let body = json!({"username": username, "password": password}).to_string();
    request(port, "POST", "/api/firstfactor", &[], &body)
}

fn cookie_of(r: &common::Response) -> String {
    r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string()
}

/// A Traefik-style ForwardAuth request for https://app.example.com/.
fn forward_auth(port: u16, extra: &[(&str, &str)]) -> common::Response {
    let mut headers = vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Uri", "/"),
    ];
    headers.extend_from_slice(extra);
    get(port, "/api/authz/forward-auth", &headers)
}

fn groups_of(r: &common::Response) -> Vec<String> {
    let mut groups: Vec<String> =
        r.header("remote-groups").unwrap_or_default().split(',').filter(|g| !g.is_empty()).map(String::from).collect();
    groups.sort();
    groups
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

#[test]
fn login_by_bind_with_groups_over_starttls() {
    let slapd = Slapd::start();
    let ldap = format!(
        "    implementation: lldap\n    address: 'ldap://127.0.0.1:{}'\n    start_tls: true\n    tls:\n      server_name: {TLS_NAME}\n",
        slapd.port
    );
    let trust =
        format!("certificates_directory: '{}'\nadmin:\n  require_two_factor: false\n", slapd.ca_dir().display());
    let (server, _dir) = start(&ldap, &trust);
    let port = server.port;

    // John logs in; the proxy gets his name, groups and address from the directory.
    let r = login(port, "john", "john password");
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.stdout());
    let cookie = cookie_of(&r);
    let r = forward_auth(port, &[("Cookie", &cookie)]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("remote-user"), Some("john"));
    assert_eq!(groups_of(&r), ["admins", "dev"]);
    assert_eq!(r.header("remote-name"), Some("John Doe"));
    assert_eq!(r.header("remote-email"), Some("john@example.com"));
    let info = request(port, "GET", "/api/user/info", &[("Cookie", &cookie)], "");
    assert_eq!(info.json()["data"]["display_name"], "John Doe", "{}", info.body);

    // Mary is in one group; Jane in none. lldap's users filter also takes the address.
    let r = login(port, "mary@example.com", "mary password");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = forward_auth(port, &[("Cookie", &cookie_of(&r))]);
    assert_eq!((r.header("remote-user"), groups_of(&r)), (Some("mary"), vec!["dev".to_string()]));
    let r = login(port, "jane", "jane password");
    let r = forward_auth(port, &[("Cookie", &cookie_of(&r))]);
    assert_eq!((r.status, r.header("remote-user"), groups_of(&r)), (200, Some("jane"), Vec::<String>::new()));

    // Wrong, empty (an unauthenticated bind to the directory) and unknown: all refused alike.
    let wrong = login(port, "john", "not his password");
    let empty = login(port, "mary", "");
    let unknown = login(port, "nobody", "john password");
    assert_eq!((wrong.status, empty.status, unknown.status), (401, 401, 401));
    assert_eq!(wrong.body, unknown.body);
    assert!(!server.stdout().contains("LDAP server unavailable"), "{}", server.stdout());

    // Basic credentials at the proxy are checked by the directory too.
    let r = forward_auth(port, &[("Authorization", &basic("mary", "mary password"))]);
    assert_eq!((r.status, r.header("remote-user"), groups_of(&r)), (200, Some("mary"), vec!["dev".to_string()]));
    let r = forward_auth(port, &[("Authorization", &basic("mary", "john password"))]);
    assert_eq!(r.status, 401, "wrong Basic credentials are not a login");

    // The admin API reads the directory's users and refuses to write them.
    let mut admin = Client::new(port);
    admin.cookie = Some(cookie.clone());
    let list = admin.call("GET", "/api/admin/users", "");
    assert_eq!(list.status, 200, "{}", list.body);
    let listed = list.json();
    let names: Vec<&str> = listed["data"]["users"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", list.body))
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["jane", "john", "mary"]);
    let one = admin.call("GET", "/api/admin/users/mary", "");
    assert_eq!(one.json()["data"]["groups"], json!(["dev"]), "{}", one.body);
    let created = admin.json("POST", "/api/admin/users", json!({"username": "kim", "password": "kim password 123"}));
    assert_eq!(created.status, 409, "{}", created.body);
    assert_eq!(created.json()["status"], "KO");
    assert!(created.json()["message"].as_str().unwrap().contains("LDAP"), "{}", created.body);
    assert_eq!(admin.json("PATCH", "/api/admin/users/mary", json!({"disabled": true})).status, 409);
    assert_eq!(admin.call("DELETE", "/api/admin/users/mary", "").status, 409);
    let r = login(port, "mary", "mary password");
    assert_eq!(r.status, 200, "mary is untouched");
}

#[test]
fn groups_by_member_of() {
    let slapd = Slapd::start();
    let ldap = format!(
        "    implementation: custom\n    address: 'ldap://127.0.0.1:{}'\n    additional_users_dn: ou=people\n    \
         users_filter: '(&({{username_attribute}}={{input}})(objectClass=inetOrgPerson))'\n    \
         groups_filter: '(&(|{{memberof:rdn}})(objectClass=groupOfNames))'\n    group_search_mode: memberof\n    \
         attributes:\n      member_of: memberOf\n",
        slapd.port
    );
    let (server, _dir) = start(&ldap, "");
    let r = login(server.port, "john", "john password");
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.stdout());
    let r = forward_auth(server.port, &[("Cookie", &cookie_of(&r))]);
    assert_eq!((r.header("remote-user"), groups_of(&r)), (Some("john"), vec!["admins".into(), "dev".into()]));
    // This users filter has no address: an address is no login here.
    assert_eq!(login(server.port, "john@example.com", "john password").status, 401);
    let r = login(server.port, "jane", "jane password");
    let r = forward_auth(server.port, &[("Cookie", &cookie_of(&r))]);
    assert_eq!((r.header("remote-user"), groups_of(&r)), (Some("jane"), Vec::<String>::new()));
}

#[test]
fn injection_attempts_in_the_username_are_only_values() {
    let slapd = Slapd::start();
    let (server, _dir) = start(&plain(&slapd), "regulation:\n  max_retries: 0\n");
    let port = server.port;
    assert_eq!(login(port, "john", "john password").status, 200);
    // Unescaped, `j*` would find John alone and his password would log in; `)(uid=*` and
    // the others would make filters the server refuses (a 503). Escaped, they are names
    // nobody has: 401, like any unknown user.
    for username in ["j*", "*", "*)(uid=*", ")(uid=*", "john)(uid=*", "john\u{0}", "jo\\68n", "{input}", "john*"] {
        let r = login(port, username, "john password");
        assert_eq!(r.status, 401, "{username:?}: {}", r.body);
    }
    assert!(!server.stdout().contains("LDAP server unavailable"), "every filter was valid:\n{}", server.stdout());
    let r = forward_auth(port, &[("Authorization", &basic("j*", "john password"))]);
    assert_ne!(r.status, 200, "Basic credentials are escaped too");
}

#[test]
fn tls_is_verified_against_the_test_ca() {
    let slapd = Slapd::start();
    let other = common::pki::TestCa::new("Another CA");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("ca.pem"), other.cert_pem()).unwrap();
    let trust = |dir: &std::path::Path| format!("certificates_directory: '{}'\n", dir.display());
    let ldaps = |name: &str| {
        format!(
            "    implementation: lldap\n    address: 'ldaps://127.0.0.1:{}'\n    tls:\n      server_name: {name}\n      minimum_version: TLS1.2\n",
            slapd.tls_port
        )
    };

    // LDAPS with the right CA and name.
    let (server, _dir) = start(&ldaps(TLS_NAME), &trust(&slapd.ca_dir()));
    assert_eq!(login(server.port, "john", "john password").status, 200, "{}", server.stdout());
    drop(server);

    // Another CA, or a name the certificate does not have: the directory is unavailable.
    let (server, _dir) = start(&ldaps(TLS_NAME), &trust(elsewhere.path()));
    let r = login(server.port, "john", "john password");
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(server.wait_for_log("LDAP server unavailable").contains("LDAP server unavailable"));
    drop(server);
    let (server, _dir) = start(&ldaps("other.test"), &trust(&slapd.ca_dir()));
    assert_eq!(login(server.port, "john", "john password").status, 503);
    drop(server);
    // StartTLS without server_name verifies the address (127.0.0.1), which is not in it.
    let starttls = format!("{}    start_tls: true\n", plain(&slapd));
    let (server, _dir) = start(&starttls, &trust(&slapd.ca_dir()));
    assert_eq!(login(server.port, "john", "john password").status, 503);
}

#[test]
fn password_change_and_reset_through_the_directory() {
    let slapd = Slapd::start();
    let (server, dir) = start(&plain(&slapd), "admin:\n  require_two_factor: false\n");
    let port = server.port;

    // Change: the old password is checked by a bind, the new one set by the server.
    let mut john = Client::new(port);
    assert_eq!(
        john.json("POST", "/api/firstfactor", json!({"username": "john", "password": "john password"})).status,
        200
    );
    let change = json!({"username": "john", "old_password": "john password", "new_password": "a new john password"});
    let r = john.json("POST", "/api/change-password", change);
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.stdout());
    assert_eq!(login(port, "john", "john password").status, 401, "the old password no longer binds");
    assert_eq!(login(port, "john", "a new john password").status, 200);
    let stored = slapd.stored_password("john");
    assert!(stored.starts_with("{SSHA}"), "set by the password-modify operation, hashed by slapd: {stored}");

    // Reset by the mailed link.
    let mut c = Client::new(port);
    let r = c.json("POST", "/api/reset-password/identity/start", json!({"username": "mary"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let notifications = dir.path().join("notifications.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let text = loop {
        let text = std::fs::read_to_string(&notifications).unwrap_or_default();
        if text.contains("token=") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(text.contains("mary@example.com"), "{text}\n{}", server.stdout());
    let start = text.find("reset-password/step2?token=").expect("a reset link") + "reset-password/step2?token=".len();
    let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    let r = c.json("POST", "/api/reset-password/identity/finish", json!({"token": token}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.json("POST", "/api/reset-password", json!({"password": "mary reset password"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(login(port, "mary", "mary password").status, 401);
    assert_eq!(login(port, "mary", "mary reset password").status, 200);
    assert!(slapd.stored_password("mary").starts_with("{SSHA}"));
    assert!(!server.stdout().contains("mary reset password"), "the password is not logged");

    // An administrator's new password for a user goes to the directory too.
    let r = john.json("POST", "/api/admin/users/jane/password", json!({"password": "jane set by admin"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(login(port, "jane", "jane password").status, 401);
    assert_eq!(login(port, "jane", "jane set by admin").status, 200);
}

#[test]
fn referrals_are_followed_only_when_permitted() {
    let home = Slapd::start();
    let partner = Slapd::start();
    let kim = "dn: ou=partners,ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: partners\n\n\
               dn: uid=kim,ou=partners,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: kim\n\
               cn: Kim Lee\nsn: Lee\nmail: kim@example.com\nuserPassword: kim password\n";
    partner.ldap_tool("ldapadd", &["-f", &partner.write("kim.ldif", kim)]);
    let referral = format!(
        "dn: ou=partners,ou=people,dc=example,dc=com\nobjectClass: referral\nobjectClass: extensibleObject\n\
         ou: partners\nref: ldap://127.0.0.1:{}/ou=partners,ou=people,dc=example,dc=com\n",
        partner.port
    );
    home.ldap_tool("ldapadd", &["-M", "-f", &home.write("referral.ldif", &referral)]);

    let (server, _dir) = start(&plain(&home), "");
    assert_eq!(login(server.port, "kim", "kim password").status, 401, "referrals are not followed by default");
    drop(server);

    let (server, _dir) = start(&format!("{}    permit_referrals: true\n", plain(&home)), "");
    let r = login(server.port, "kim", "kim password");
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.stdout());
    let r = forward_auth(server.port, &[("Cookie", &cookie_of(&r))]);
    assert_eq!((r.header("remote-user"), r.header("remote-email")), (Some("kim"), Some("kim@example.com")));
    assert_eq!(login(server.port, "kim", "john password").status, 401, "the bind at the referred server decides");
    assert_eq!(login(server.port, "john", "john password").status, 200, "local users are unaffected");
}

#[test]
fn client_certificates_are_presented_when_configured() {
    let slapd = Slapd::start_with("TLSVerifyClient demand");
    let client = slapd.ca.client("portcullis");
    let indent = |pem: &str| pem.lines().map(|l| format!("        {l}\n")).collect::<String>();
    let ldaps = format!(
        "    implementation: lldap\n    address: 'ldaps://127.0.0.1:{}'\n    tls:\n      server_name: {TLS_NAME}\n",
        slapd.tls_port
    );
    let trust = format!("certificates_directory: '{}'\n", slapd.ca_dir().display());

    let (server, _dir) = start(&ldaps, &trust);
    assert_eq!(login(server.port, "john", "john password").status, 503, "the server demands a certificate");
    drop(server);

    let with_certificate = format!(
        "{ldaps}      certificate_chain: |\n{}      private_key: |\n{}",
        indent(&client.cert_pem),
        indent(&client.key_pem)
    );
    let (server, _dir) = start(&with_certificate, &trust);
    let r = login(server.port, "john", "john password");
    assert_eq!(r.status, 200, "{}\n{}", r.body, server.stdout());
    assert!(!server.stdout().contains("BEGIN PRIVATE KEY"), "the key is not logged");
}

#[test]
fn slapd_stopped_and_restarted() {
    let mut slapd = Slapd::start();
    let (server, _dir) = start(&plain(&slapd), "");
    let port = server.port;
    let r = login(port, "john", "john password");
    assert_eq!(r.status, 200);
    let cookie = cookie_of(&r);
    let mut john = Client::new(port);
    john.cookie = Some(cookie.clone());

    slapd.stop();
    // Existing sessions keep working: the proxy's check never asks the directory.
    for _ in 0..3 {
        let r = forward_auth(port, &[("Cookie", &cookie)]);
        assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
        assert_eq!(groups_of(&r), ["admins", "dev"]);
    }
    let info = john.call("GET", "/api/user/info", "");
    assert_eq!(info.status, 200, "John's page is answered from what was last seen: {}", info.body);
    // Logins fail with 503 and a clear log line.
    let r = login(port, "mary", "mary password");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["status"], "KO");
    let log = server.wait_for_log("LDAP server unavailable");
    assert!(log.contains("LDAP server unavailable"), "{log}");
    let r = forward_auth(port, &[("Authorization", &basic("mary", "mary password"))]);
    assert_ne!(r.status, 200, "no Basic login without the directory");
    // Readiness reports the directory down but stays ready: sessions still work.
    let ready = get(port, "/api/health/ready", &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["data"]["users"]["status"], "down", "{}", ready.body);
    assert_eq!(ready.json()["data"]["users"]["required"], false);

    // Back without restarting Portcullis.
    slapd.restart();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = login(port, "mary", "mary password");
        if r.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery: {} {}", r.status, r.body);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let r = forward_auth(port, &[("Cookie", &cookie)]);
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ready = get(port, "/api/health/ready", &[]);
    assert_eq!(ready.json()["data"]["users"]["status"], "up", "{}", ready.body);
}
