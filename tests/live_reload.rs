//! Live reload against the real binary: the rules in a second `--config` file edited under
//! a steady client loop (new decision within a second, no failed request), a broken edit
//! (old rules stay, the log names the key, the metric counts the failure), a change only a
//! restart applies (named), `SIGHUP` (rules and the users file), and mail templates.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;

const JOHN: &str = "john password";

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    rules: PathBuf,
    metrics_port: u16,
}

fn rules_yaml(app_policy: &str) -> String {
    format!(
        "access_control:\n  default_policy: deny\n  networks:\n    - {{name: lab, networks: ['192.0.2.0/24']}}\n  rules:\n    - {{domain: app.example.com, policy: {app_policy}}}\n    - {{domain: lab.example.com, networks: [lab], policy: bypass}}\n"
    )
}

fn users(password: &str) -> String {
    format!(
        "users:\n  john:\n    displayname: John\n    password: '{}'\n    email: john@example.com\n    groups: [dev]\n",
        argon2_hash(password)
    )
}

/// Starts with the main file and the rules in a file of their own, both given with
/// `--config` (through `PORTCULLIS_CONFIG`), with metrics on.
fn start(extra: &str) -> Setup {
    let port = free_port();
    let metrics_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users(JOHN)).unwrap();
    let main = dir.path().join("configuration.yml");
    let telemetry = format!(
        "telemetry:\n  metrics:\n    enabled: true\n    address: 'tcp://127.0.0.1:{metrics_port}/metrics'\n{extra}"
    );
    std::fs::write(&main, config_yaml(port, dir.path(), &telemetry)).unwrap();
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, rules_yaml("bypass")).unwrap();
    let files = format!("{},{}", main.display(), rules.display());
    let server = Server::start(None, port, &[("PORTCULLIS_CONFIG", files.as_str())]);
    Setup { server, dir, rules, metrics_port }
}

/// A ForwardAuth check of `https://<host>/` by an anonymous browser.
fn check(port: u16, host: &str) -> std::io::Result<Response> {
    try_request(
        port,
        &format!(
            "GET /api/authz/forward-auth HTTP/1.1\r\nHost: auth.example.com\r\nX-Forwarded-Proto: https\r\n\
             X-Forwarded-Host: {host}\r\nX-Forwarded-Uri: /\r\nX-Forwarded-Method: GET\r\nConnection: close\r\n\r\n"
        ),
    )
}

fn reloads(metrics_port: u16, source: &str, result: &str) -> u64 {
    let r = request(metrics_port, "GET", "/metrics", &[("Host", "127.0.0.1")], "");
    assert_eq!(r.status, 200);
    let line = r
        .body
        .lines()
        .find(|l| {
            l.starts_with("portcullis_config_reloads_total{")
                && l.contains(&format!("source=\"{source}\""))
                && l.contains(&format!("result=\"{result}\""))
        })
        .unwrap_or_else(|| panic!("no {source}/{result} series:\n{}", r.body));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Waits until the log holds `needle` `count` times.
fn wait_for_count(server: &Server, needle: &str, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.stdout();
        if log.matches(needle).count() >= count || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_rule_change_applies_within_a_second_with_no_failed_request() {
    let s = start("");
    let port = s.server.port;
    assert_eq!(check(port, "app.example.com").unwrap().status, 200);

    // A steady loop of anonymous checks from four clients: every answer must be the old
    // decision (200) until the new one (403) is first seen, then only the new one.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let first_denied_us = Arc::new(AtomicU64::new(u64::MAX));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, first_denied_us) = (stop.clone(), first_denied_us.clone());
            std::thread::spawn(move || {
                let (mut sent, mut failed, mut back_to_old) = (0u64, Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let at = started.elapsed().as_micros() as u64;
                    sent += 1;
                    match check(port, "app.example.com") {
                        Ok(r) if r.status == 200 => {
                            if first_denied_us.load(Ordering::SeqCst) < at {
                                back_to_old += 1;
                            }
                        }
                        Ok(r) if r.status == 403 => {
                            first_denied_us.fetch_min(started.elapsed().as_micros() as u64, Ordering::SeqCst);
                        }
                        Ok(r) => failed.push(format!("{} {}", r.status, r.body)),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (sent, failed, back_to_old)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Edited in place, as an editor saving over the file does.
    let written_us = started.elapsed().as_micros() as u64;
    std::fs::write(&s.rules, rules_yaml("deny")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while first_denied_us.load(Ordering::SeqCst) == u64::MAX && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut failed, mut back_to_old) = (0, Vec::new(), 0);
    for client in clients {
        let (s, f, b) = client.join().unwrap();
        sent += s;
        failed.extend(f);
        back_to_old += b;
    }
    let denied_at = first_denied_us.load(Ordering::SeqCst);
    assert_ne!(denied_at, u64::MAX, "the new rule never applied:\n{}", s.server.stdout());
    let latency = Duration::from_micros(denied_at - written_us);
    println!("rule change applied {latency:?} after the write; {sent} checks, {} failed", failed.len());
    assert!(latency < Duration::from_secs(1), "applied after {latency:?}");
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert_eq!(back_to_old, 0, "an answer by the old rules came after the new ones applied");
    let log = s.server.stdout();
    assert!(log.contains("configuration reloaded"), "{log}");
    assert_eq!(reloads(s.metrics_port, "configuration", "success"), 1);
}

#[test]
fn a_broken_rule_file_keeps_the_running_rules_and_names_the_key() {
    let s = start("");
    let port = s.server.port;
    std::fs::write(&s.rules, rules_yaml("allow")).unwrap();
    let log = wait_for_count(&s.server, "configuration reload refused", 1);
    let line = log
        .lines()
        .find(|l| l.contains("configuration reload:") && l.contains("access_control.rules[0].policy"))
        .unwrap_or_else(|| panic!("the key is not named:\n{log}"));
    assert!(line.contains("allow"), "{line}");
    assert_eq!(check(port, "app.example.com").unwrap().status, 200, "the running rules stay");
    assert_eq!(reloads(s.metrics_port, "configuration", "failure"), 1);
    assert_eq!(reloads(s.metrics_port, "configuration", "success"), 0);

    // Half a file (a syntax error) is refused the same way, with its line.
    let whole = rules_yaml("deny");
    std::fs::write(&s.rules, &whole[..whole.len() / 2 - 7]).unwrap();
    wait_for_count(&s.server, "configuration reload refused", 2);
    assert_eq!(check(port, "app.example.com").unwrap().status, 200);

    // A network name the rules use, defined nowhere: refused, named.
    std::fs::write(&s.rules, rules_yaml("deny").replace("name: lab,", "name: other,")).unwrap();
    let log = wait_for_count(&s.server, "configuration reload refused", 3);
    assert!(log.contains("access_control.rules[1].networks"), "{log}");
    assert_eq!(check(port, "app.example.com").unwrap().status, 200);

    // Fixed: applied.
    std::fs::write(&s.rules, rules_yaml("deny")).unwrap();
    wait_for_count(&s.server, "configuration reloaded", 1);
    assert_eq!(check(port, "app.example.com").unwrap().status, 403);
    assert_eq!(reloads(s.metrics_port, "configuration", "failure"), 3);
    assert_eq!(reloads(s.metrics_port, "configuration", "success"), 1);
}

#[test]
fn keys_that_need_a_restart_are_named_and_keep_their_values() {
    let s = start("regulation:\n  max_retries: 3\n");
    let main = s.dir.path().join("configuration.yml");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("max_retries: 3", "max_retries: 5")).unwrap();
    let log = wait_for_count(&s.server, "need a restart", 1);
    let line = log.lines().find(|l| l.contains("need a restart")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("regulation.max_retries"), "{line}");
    assert!(!line.contains("access_control"), "{line}");
    // The reloadable parts were applied all the same.
    assert!(log.contains("configuration reloaded"), "{log}");
}

/// Writes `text` over `path` keeping its size, inode and modification time, so that only
/// a signal makes the server read it.
fn write_unnoticed(path: &Path, text: &str) {
    let before = std::fs::metadata(path).unwrap();
    assert_eq!(before.len(), text.len() as u64, "same size");
    let mut file = std::fs::File::options().write(true).open(path).unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file.set_modified(before.modified().unwrap()).unwrap();
}

fn hangup(server: &Server) {
    let status = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn sighup_reloads_the_rules_and_the_users_file() {
    let s = start("");
    let port = s.server.port;
    let users_file = s.dir.path().join("users.yml");
    let login = |password: &str| {
        request(port, "POST", "/api/firstfactor", &[], &format!(r#"{{"username":"john","password":"{password}"}}"#))
    };
    assert_eq!(login(JOHN).status, 200);

    // Same size, same time, same file: invisible to the watch.
    write_unnoticed(&s.rules, &rules_yaml("deny  "));
    let new_users = users("a new password");
    std::fs::write(&users_file, &new_users).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(check(port, "app.example.com").unwrap().status, 200, "no signal yet");
    assert_eq!(login(JOHN).status, 200, "the users file is not watched (watch: false)");

    hangup(&s.server);
    let log = wait_for_count(&s.server, "users file reloaded", 1);
    assert!(log.contains("SIGHUP received"), "{log}");
    assert!(log.lines().any(|l| l.contains("configuration reloaded") && l.contains("SIGHUP")), "{log}");
    assert_eq!(check(port, "app.example.com").unwrap().status, 403);
    assert_eq!(login(JOHN).status, 401, "the old password no longer works");
    assert_eq!(login("a new password").status, 200);
    assert_eq!(reloads(s.metrics_port, "users_file", "success"), 1);
}

#[test]
fn mail_templates_are_reloaded() {
    let s = start("");
    let templates = s.dir.path().join("mail");
    std::fs::create_dir(&templates).unwrap();
    let main = s.dir.path().join("configuration.yml");
    let text = std::fs::read_to_string(&main).unwrap();
    let with_path = text.replace("notifier:\n", &format!("notifier:\n  template_path: '{}'\n", templates.display()));
    assert_ne!(text, with_path);
    std::fs::write(&main, with_path).unwrap();
    wait_for_count(&s.server, "configuration reloaded", 1);

    // A broken override is refused, naming the key and the file; the templates stay.
    let file = templates.join("one_time_code.txt");
    std::fs::write(&file, "{% if %}").unwrap();
    let log = wait_for_count(&s.server, "configuration reload refused", 1);
    assert!(log.lines().any(|l| l.contains("notifier.template_path") && l.contains("one_time_code.txt")), "{log}");

    // A good one is used by the next mail.
    std::fs::write(&file, "Reloaded template. Your code:\n\n{{ code }}\n").unwrap();
    wait_for_count(&s.server, "configuration reloaded", 2);
    let mut client = client::Client::new(s.server.port);
    let r = client.json("POST", "/api/firstfactor", serde_json::json!({"username": "john", "password": JOHN}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = client.call("POST", "/api/user/session/elevation", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let mail = std::fs::read_to_string(s.dir.path().join("notifications.txt")).unwrap();
    assert!(mail.contains("Reloaded template. Your code:"), "{mail}");
}
