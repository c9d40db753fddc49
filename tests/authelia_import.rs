//! `storage import-authelia` against databases built by Authelia's own migration SQL
//! (tests/fixtures/authelia-storage, Authelia 4.39) on SQLite, PostgreSQL and MariaDB,
//! filled as Authelia fills them: values sealed with Authelia's key, credential IDs in
//! standard base64, timestamps as each database keeps them. Then the imported second
//! factors are used to sign in, and the ban and preferences hold.

mod common;

use std::path::Path;
use std::process::Command;

use common::client::Client;
use common::databases::{MariaDbServer, PostgresServer};
use common::*;
use portcullis::second_factor::totp::TotpService;
use portcullis::storage::Cipher;
use serde_json::json;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::RequestChallengeResponse;

const AUTHELIA_KEY: &str = "an-authelia-encryption-key-for-tests";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ORIGIN: &str = "https://auth.example.com";
const SUBJECT: &str = "6d5cb4a0-8f44-4d0a-9a0b-1f2e3d4c5b6a";
const SECTOR_SUBJECT: &str = "0b7e2f43-1c9d-4e8a-b6f5-7a8c9d0e1f2a";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

/// A security key registered with Authelia: the authenticator holding it, its ID and
/// COSE public key as Authelia stored them.
struct Key {
    authenticator: SoftPasskey,
    id: Vec<u8>,
    cose: Vec<u8>,
}

fn registered_key() -> Key {
    use webauthn_rs::prelude::{Url, Uuid};
    let origin = Url::parse(ORIGIN).unwrap();
    let webauthn = webauthn_rs::WebauthnBuilder::new("example.com", &origin).unwrap().build().unwrap();
    let (options, state) = webauthn.start_passkey_registration(Uuid::new_v4(), "john", "John", None).unwrap();
    let mut authenticator = SoftPasskey::new(true);
    let answer = authenticator.do_registration(origin, options).unwrap();
    let passkey = webauthn.finish_passkey_registration(&answer, &state).unwrap();
    let cose = portcullis::second_factor::portable::cose_bytes(passkey.get_public_key()).unwrap();
    Key { authenticator, id: passkey.cred_id().to_vec(), cose }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What Authelia would have written: its schema version, key check, a TOTP setup, a
/// security key and a U2F-era one, preferences, bans in force, an expired and a revoked
/// ban, and OpenID Connect subjects.
fn authelia_rows(kind: Kind, key: &Key) -> String {
    use base64::Engine;
    let sealed = Cipher::from_key(AUTHELIA_KEY);
    let blob = |plain: &[u8]| {
        let value = hex(&sealed.encrypt(plain).unwrap());
        match kind {
            Kind::Postgres => format!("decode('{value}', 'hex')"),
            Kind::Sqlite | Kind::Mysql => format!("X'{value}'"),
        }
    };
    let time = |t: &str| match kind {
        Kind::Sqlite => format!("'{t}+00:00'"),
        Kind::Postgres => format!("'{t}+00'"),
        Kind::Mysql => format!("'{t}'"),
    };
    let kid = base64::engine::general_purpose::STANDARD.encode(&key.id);
    let old_kid = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let prefix = if kind == Kind::Mysql { "SET time_zone = '+00:00';\n" } else { "" };
    format!(
        "{prefix}\
INSERT INTO migrations (applied, version_before, version_after, application_version) VALUES ({t0}, 23, 24, 'v4.39.20');
INSERT INTO encryption (name, value) VALUES ('check', {check});
INSERT INTO totp_configurations (created_at, last_used_at, username, issuer, algorithm, digits, period, secret)
  VALUES ({t0}, {t1}, 'john', 'Authelia', 'SHA1', 6, 30, {secret});
INSERT INTO webauthn_credentials (created_at, last_used_at, rpid, username, description, kid, aaguid, attestation_format,
  attachment, transport, sign_count, clone_warning, legacy, discoverable, present, verified, backup_eligible, backup_state, public_key)
  VALUES ({t0}, {t1}, 'example.com', 'john', 'YubiKey', '{kid}', '00000000-0000-0000-0000-000000000000', 'none',
  'cross-platform', 'usb,nfc', 0, FALSE, FALSE, FALSE, TRUE, TRUE, FALSE, FALSE, {cose});
INSERT INTO webauthn_credentials (created_at, rpid, username, description, kid, attestation_format, attachment, transport,
  sign_count, clone_warning, legacy, discoverable, present, verified, backup_eligible, backup_state, public_key)
  VALUES ({t0}, 'example.com', 'john', 'Old U2F key', '{old_kid}', 'fido-u2f', 'cross-platform', 'usb', 12, FALSE, TRUE,
  FALSE, FALSE, FALSE, FALSE, FALSE, {cose});
INSERT INTO user_preferences (username, second_factor_method) VALUES ('john', 'webauthn');
INSERT INTO user_preferences (username, second_factor_method) VALUES ('mary', 'mobile_push');
INSERT INTO banned_user (time, expires, revoked, username, source, reason) VALUES ({t0}, {future}, FALSE, 'mallory', 'cli', 'brute force');
INSERT INTO banned_user (time, expires, revoked, username, source) VALUES ({t0}, {t1}, FALSE, 'expired', 'regulation');
INSERT INTO banned_user (time, expires, revoked, username, source) VALUES ({t0}, {future}, TRUE, 'revoked', 'cli');
INSERT INTO banned_ip (time, expires, revoked, ip, source) VALUES ({t0}, NULL, FALSE, '192.0.2.7', 'cli');
INSERT INTO user_opaque_identifier (service, sector_id, username, identifier) VALUES ('openid', '', 'john', '{SUBJECT}');
INSERT INTO user_opaque_identifier (service, sector_id, username, identifier)
  VALUES ('openid', 'app.example.com', 'john', '{SECTOR_SUBJECT}');
",
        t0 = time("2026-01-02 03:04:05"),
        t1 = time("2026-02-03 04:05:06"),
        future = time("2037-12-31 00:00:00"),
        check = blob(b"b5ac2a5e-1a3b-4c8e-9d0f-2e4a6c8b0d1f"),
        secret = blob(TOTP_SECRET.as_bytes()),
        cose = blob(&key.cose),
    )
}

/// Authelia's migrations, in order, as one script for `kind`.
fn authelia_schema(kind: Kind) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/authelia-storage").join(match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
        Kind::Mysql => "mysql",
    });
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 24, "Authelia 4.39's 24 migrations");
    files.iter().map(|f| std::fs::read_to_string(f).unwrap() + "\n").collect()
}

fn sqlite_script(db: &Path, script: &str) {
    let out = Command::new("python3")
        // Authelia's SQLite driver registers BIN2B64 and B642BIN, which its migrations use.
        .args([
            "-c",
            "import base64,sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.create_function('BIN2B64', 1, lambda b: None if b is None else base64.b64encode(b).decode()); \
             c.create_function('B642BIN', 1, lambda t: None if t is None else base64.b64decode(t)); \
             c.executescript(sys.stdin.read()); c.commit()",
        ])
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `sql` in database `authelia` as one multi-statement query, as Authelia runs its
/// migrations (they define stored procedures, which the command-line client would split).
fn mysql_script(port: u16, sql: &str) {
    use mysql_async::prelude::Queryable;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let opts = mysql_async::Opts::from_url(&format!("mysql://root@127.0.0.1:{port}/authelia")).unwrap();
        let mut conn = mysql_async::Conn::new(opts).await.unwrap();
        conn.query_drop(sql).await.unwrap();
        conn.disconnect().await.unwrap();
    });
}

fn sqlite_rows(db: &Path, query: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"])
        .arg(db)
        .arg(query)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn users_yaml() -> String {
    let hash = argon2_hash("correct horse");
    format!(
        "users:\n  john:\n    displayname: John\n    password: '{hash}'\n    email: john@example.com\n\
         \x20 mallory:\n    displayname: Mallory\n    password: '{hash}'\n    email: mallory@example.com\n"
    )
}

/// Runs `storage import-authelia` with our configuration `ours`; exit code and output.
fn import(dir: &Path, ours: &Path, from: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args =
        vec!["storage", "import-authelia", "--from", from.to_str().unwrap(), "--config", ours.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = run(&args, dir, &[]);
    (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
}

/// Imports from the Authelia database `from` describes into a fresh SQLite database of
/// ours, checks the report, and returns our configuration.
fn import_and_check(dir: &Path, from: &Path, port: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("users.yml"), users_yaml()).unwrap();
    let ours = dir.join("ours.yml");
    std::fs::write(&ours, config_yaml(port, dir, "webauthn: {enable_passkey_login: true}")).unwrap();

    // A dry run opens everything and changes nothing.
    let (code, out) = import(dir, &ours, from, &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("schema version 24") && out.contains("would import") && out.contains("totp: 1 imported"),
        "{out}"
    );
    let db = dir.join("db.sqlite3");
    assert_eq!(sqlite_rows(&db, "select count(*) from totp_configurations"), "[(0,)]", "dry run wrote nothing");

    let (code, out) = import(dir, &ours, from, &[]);
    assert_eq!(code, Some(0), "{out}");
    for expected in [
        "totp: 1 imported, 0 already there, 0 skipped",
        "webauthn: 1 imported, 0 already there, 1 skipped",
        "preference: 1 imported, 0 already there, 1 skipped",
        "ban: 2 imported, 0 already there, 0 skipped",
        "subject: 2 imported, 0 already there, 0 skipped",
        "needs the appid extension",
        "Duo push is not supported",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }

    // Again: everything is there already; nothing is duplicated.
    let (code, out) = import(dir, &ours, from, &[]);
    assert_eq!(code, Some(0), "{out}");
    for expected in [
        "totp: 0 imported, 1 already there",
        "webauthn: 0 imported, 1 already there",
        "ban: 0 imported, 2 already there",
        "subject: 0 imported, 2 already there",
    ] {
        assert!(out.contains(expected), "{expected}: {out}");
    }
    assert_eq!(
        sqlite_rows(&db, "select sector_id, username, identifier from oidc_subjects order by sector_id"),
        format!("[('', 'john', '{SUBJECT}'), ('app.example.com', 'john', '{SECTOR_SUBJECT}')]")
    );
    assert_eq!(
        sqlite_rows(&db, "select kind, subject, expires_at, source, reason from bans order by id"),
        "[('user', 'mallory', 2145830400, 'authelia', 'brute force'), ('ip', '192.0.2.7', None, 'authelia', None)]",
        "times carried over as Unix seconds; the expired and revoked bans left behind"
    );
    assert_eq!(
        sqlite_rows(&db, "select username, created_at, last_used_at, issuer from totp_configurations"),
        "[('john', 1767323045, 1770091506, 'Authelia')]"
    );
    ours
}

/// The imported TOTP setup and security key sign John in; Mallory's ban holds; John's
/// preferred method is the key.
fn sign_in_with_imported_factors(ours: &Path, mut key: Key) {
    let yaml = std::fs::read_to_string(ours).unwrap();
    let port: u16 = yaml.split("127.0.0.1:").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    let server = Server::start(Some(&yaml), port, &[]);
    let mut c = Client::new(server.port);
    let r = c.json("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let info = c.call("GET", "/api/user/info", "").json();
    assert_eq!(info["data"]["method"], "webauthn", "{info}");
    assert_eq!(info["data"]["has_totp"], true, "{info}");
    assert_eq!(info["data"]["has_webauthn"], true, "{info}");

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let code = TotpService::code_at(&totp_record(TOTP_SECRET), now).unwrap();
    let r = c.json("POST", "/api/secondfactor/totp", json!({"token": code}));
    assert_eq!(r.status, 200, "the TOTP secret carried over: {}", r.body);
    assert_eq!(c.level(), 2);

    // The security key, in a new session.
    assert_eq!(c.call("POST", "/api/logout", "").status, 200);
    let r = c.json("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.call("GET", "/api/secondfactor/webauthn", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let challenge: RequestChallengeResponse = serde_json::from_value(r.json()["data"].clone()).unwrap();
    assert_eq!(challenge.public_key.allow_credentials.len(), 1, "the U2F-era key was not imported");
    let assertion = key.authenticator.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    let r = c.json("POST", "/api/secondfactor/webauthn", json!({"response": assertion}));
    assert_eq!(r.status, 200, "the security key carried over: {}", r.body);
    assert_eq!(c.level(), 2);
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert_eq!(list["data"][0]["description"], "YubiKey", "{list}");
    assert_eq!(list["data"][0]["transports"], json!(["usb", "nfc"]), "{list}");
    use base64::Engine;
    let shown =
        base64::engine::general_purpose::STANDARD.decode(list["data"][0]["public_key"].as_str().unwrap()).unwrap();
    assert_eq!(shown, key.cose, "the same COSE key as Authelia stored");

    let mut m = Client::new(server.port);
    let r = m.json("POST", "/api/firstfactor", json!({"username": "mallory", "password": "correct horse"}));
    assert_eq!(r.status, 429, "Authelia's ban holds: {}", r.body);
}

/// Authelia's export files: WebAuthn credentials out and back in (the key still signs in
/// afterwards), subjects out, added, generated and back in, TOTP setups as QR codes.
fn exports_round_trip(dir: &Path, ours: &Path, key: &Key) {
    use base64::Engine;
    let cli = |args: &[&str]| {
        let mut all = vec!["storage", "user"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", ours.to_str().unwrap()]);
        let o = run(&all, dir, &[]);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let file = dir.join("webauthn.yml");
    let (code, out) = cli(&["webauthn", "export", "--file", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let exported = std::fs::read_to_string(&file).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    for expected in [
        "webauthn_credentials:".to_string(),
        "username: john".into(),
        "description: YubiKey".into(),
        format!("kid: {}", b64.encode(&key.id)),
        format!("public_key: {}", b64.encode(&key.cose)),
    ] {
        assert!(exported.contains(&expected), "{expected}: {exported}");
    }
    let (code, out) = cli(&["webauthn", "verify", "--verbose"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok       john (YubiKey)") && out.contains("0 with a problem"), "{out}");
    assert_eq!(cli(&["webauthn", "delete", "john", "--all"]).0, Some(0));
    let (code, out) = cli(&["webauthn", "import", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("imported john (YubiKey)"), "{out}");
    let (_, out) = cli(&["webauthn", "import", file.to_str().unwrap()]);
    assert!(out.contains("exists   john (YubiKey)"), "{out}");
    std::fs::write(&file, exported.replace("public_key: ", "public_key: AAAA")).unwrap();
    let (code, out) = cli(&["webauthn", "import", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "a damaged key is refused: {out}");
    assert!(out.contains("webauthn_credentials[0]"), "{out}");

    let ids = dir.join("ids.yml");
    let (code, out) = cli(&["identifiers", "export", "--file", ids.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&ids).unwrap();
    assert!(
        text.contains(SUBJECT) && text.contains("service: openid") && text.contains("sector_id: app.example.com"),
        "{text}"
    );
    let (code, out) = cli(&["identifiers", "import", ids.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Imported 0 identifier(s); 2"), "{out}");
    let chosen = "f0919359-9d15-4e15-bcba-83b41620a073";
    let (code, out) = cli(&["identifiers", "add", "mary", "--identifier", chosen]);
    assert_eq!(code, Some(0), "{out}");
    let (code, _) = cli(&["identifiers", "add", "mary", "--identifier", chosen]);
    assert_eq!(code, Some(1), "mary has one already");
    let (code, _) = cli(&["identifiers", "add", "bob", "--identifier", "not-a-uuid"]);
    assert_eq!(code, Some(1));
    let (code, out) = cli(&["identifiers", "generate", "--users", "john,mary", "--sectors", ",other.example.com"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("john (provider-wide): {SUBJECT}"))
            && out.contains(&format!("mary (provider-wide): {chosen}")),
        "{out}"
    );
    assert!(out.contains("mary (other.example.com): "), "{out}");

    let png = dir.join("qr");
    let (code, out) = cli(&["totp", "export", "png", "--directory", png.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(std::fs::read(png.join("john.png")).unwrap().starts_with(b"\x89PNG"), "a PNG image");
}

#[test]
fn an_authelia_sqlite_database_imports_and_its_factors_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let key = registered_key();
    let authelia_db = dir.path().join("authelia.sqlite3");
    sqlite_script(&authelia_db, &(authelia_schema(Kind::Sqlite) + &authelia_rows(Kind::Sqlite, &key)));
    let from = dir.path().join("authelia.yml");
    let authelia_yaml = format!(
        "storage:\n  encryption_key: '{AUTHELIA_KEY}'\n  local:\n    path: '{}'\n\
         # The rest of an Authelia file does not matter to the import.\ntheme: light\n",
        authelia_db.display()
    );
    std::fs::write(&from, &authelia_yaml).unwrap();
    let ours = import_and_check(dir.path(), &from, free_port());
    exports_round_trip(dir.path(), &ours, &key);
    sign_in_with_imported_factors(&ours, key);

    // A wrong key is refused before anything is read.
    let wrong = dir.path().join("wrong.yml");
    std::fs::write(&wrong, authelia_yaml.replace(AUTHELIA_KEY, "not-the-authelia-encryption-key")).unwrap();
    let (code, out) = import(dir.path(), &ours, &wrong, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("does not open its database"), "{out}");
    // A missing database is named, not created.
    let missing = dir.path().join("missing.yml");
    std::fs::write(&missing, authelia_yaml.replace("authelia.sqlite3", "nothing.sqlite3")).unwrap();
    let (code, out) = import(dir.path(), &ours, &missing, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no SQLite database at") && !dir.path().join("nothing.sqlite3").exists(), "{out}");
    // A database of an unknown schema version is refused.
    sqlite_script(
        &authelia_db,
        "INSERT INTO migrations (version_before, version_after, application_version) VALUES (24, 26, 'v4.40.0');",
    );
    let (code, out) = import(dir.path(), &ours, &from, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("schema version 26 is not supported"), "{out}");
}

#[test]
fn an_authelia_postgres_database_imports() {
    let pg = PostgresServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = registered_key();
    pg.create("authelia");
    pg.script("authelia", &(authelia_schema(Kind::Postgres) + &authelia_rows(Kind::Postgres, &key)));
    let from = dir.path().join("authelia.yml");
    let yaml = format!(
        "storage:\n  encryption_key: '{AUTHELIA_KEY}'\n  postgres:\n    address: 'tcp://127.0.0.1:{}'\n    \
         database: authelia\n    username: portcullis\n    password: unused-with-trust-auth\n",
        pg.port
    );
    std::fs::write(&from, yaml).unwrap();
    let ours = import_and_check(dir.path(), &from, free_port());
    sign_in_with_imported_factors(&ours, key);
}

#[test]
fn an_authelia_mariadb_database_imports() {
    let db = MariaDbServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = registered_key();
    db.execute("CREATE DATABASE authelia");
    mysql_script(db.port, &(authelia_schema(Kind::Mysql) + &authelia_rows(Kind::Mysql, &key)));
    let from = dir.path().join("authelia.yml");
    let yaml = format!(
        "storage:\n  encryption_key: '{AUTHELIA_KEY}'\n  mysql:\n    address: 'tcp://127.0.0.1:{}'\n    \
         database: authelia\n    username: root\n",
        db.port
    );
    std::fs::write(&from, yaml).unwrap();
    let ours = import_and_check(dir.path(), &from, free_port());
    sign_in_with_imported_factors(&ours, key);
}
