//! The server over real HTTP: endpoints, errors, headers, base path, h2c, logs, shutdown.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn start(extra: &str) -> Server {
    start_env(extra, &[])
}

fn start_env(extra: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(port, dir.path(), extra);
    Server::start(Some(&yaml), port, env)
}

#[test]
fn health_state_and_configuration_endpoints() {
    // Password change is turned off through the environment, which overrides the file.
    let server = start_env(
        "
access_control:
  default_policy: one_factor
  rules:
    - domain: 'admin.example.com'
      policy: two_factor
password_policy:
  standard:
    enabled: true
    min_length: 10
    max_length: 64
    require_number: true
",
        &[("PORTCULLIS_AUTHENTICATION_BACKEND_PASSWORD_CHANGE_DISABLE", "true")],
    );
    let health = server.get("/api/health");
    assert_eq!(health.status, 200);
    assert_eq!(health.body, r#"{"status":"OK"}"#);
    assert_eq!(health.header("content-type"), Some("application/json; charset=utf-8"));

    let head = request(server.port, "HEAD", "/api/health", &[], "");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let state = server.get("/api/state").json();
    assert_eq!(
        state,
        serde_json::json!({"status": "OK", "data": {
            "username": "", "authentication_level": 0, "factor_knowledge": false,
            "default_redirection_url": "https://www.example.com/"}})
    );
    // A host outside every cookie domain has no default redirection URL.
    let other = get(server.port, "/api/state", &[("Host", "auth.other.org")]).json();
    assert!(other["data"].get("default_redirection_url").is_none(), "{other}");

    let configuration = server.get("/api/configuration").json();
    assert_eq!(
        configuration,
        serde_json::json!({"status": "OK", "data": {
            "available_methods": ["totp", "webauthn"],
            "password_change_disabled": true, "password_reset_disabled": false}})
    );

    let policy = server.get("/api/configuration/password-policy").json();
    assert_eq!(policy["data"]["mode"], "standard");
    assert_eq!(policy["data"]["min_length"], 10);
    assert_eq!(policy["data"]["max_length"], 64);
    assert_eq!(policy["data"]["require_number"], true);
    assert_eq!(policy["data"]["require_special"], false);
}

#[test]
fn without_two_factor_rules_no_second_factor_is_offered() {
    let server = start("totp: {disable: true}\npassword_policy: {zxcvbn: {enabled: true, min_score: 4}}");
    let configuration = server.get("/api/configuration").json();
    assert_eq!(configuration["data"]["available_methods"], serde_json::json!([]));
    let policy = server.get("/api/configuration/password-policy").json();
    assert_eq!(policy["data"]["mode"], "zxcvbn");
    assert_eq!(policy["data"]["min_score"], 4);
}

#[test]
fn errors_are_json_on_api_paths() {
    let server = start("");
    for path in ["/api/nope", "/api", "/api/health/extra", "/api/../api/x"] {
        let r = server.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), serde_json::json!({"status": "KO", "message": "Not Found"}), "{path}");
    }
    let page = server.get("/nothing-here");
    assert_eq!(page.status, 404);
    assert!(page.header("content-type").unwrap().starts_with("text/plain"));

    let wrong_method = request(server.port, "DELETE", "/api/state", &[], "");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    assert_eq!(wrong_method.json()["status"], "KO");

    // A request line hyper cannot parse gets a 400, and the server stays up.
    let garbage = try_request(server.port, "NOT HTTP AT ALL\r\n\r\n").unwrap();
    assert_eq!(garbage.status, 400);
    assert_eq!(server.get("/api/health").status, 200);
}

#[test]
fn security_headers_and_request_ids_on_every_response() {
    let server = start("");
    let mut ids = std::collections::HashSet::new();
    for path in ["/api/health", "/api/nope", "/elsewhere", "/api/openapi.yml"] {
        let r = server.get(path);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        assert_eq!(r.header("referrer-policy"), Some("strict-origin-when-cross-origin"), "{path}");
        assert!(r.header("permissions-policy").is_some(), "{path}");
        let id = r.header("x-request-id").expect("request id").to_string();
        assert_eq!(id.len(), 16);
        assert!(ids.insert(id), "request ids must differ");
    }
    assert_eq!(server.get("/api/state").header("cache-control"), Some("no-store"));
}

#[test]
fn openapi_document_is_served() {
    let server = start("");
    let r = server.get("/api/openapi.yml");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("application/yaml"));
    let doc: serde_yaml::Value = serde_yaml::from_str(&r.body).unwrap();
    assert_eq!(doc["openapi"].as_str(), Some("3.1.0"));
    assert_eq!(doc["servers"][0]["url"].as_str(), Some("https://auth.example.com/"));

    // The same document as a page to read at /api/, where Authelia serves Swagger UI.
    let page = server.get("/api/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    let body = page.body.replace("&#x2f;", "/");
    assert!(body.contains("<code>POST /api/firstfactor</code>"), "{body}");
    assert!(body.contains("href=\"/api/openapi.yml\""), "{body}");
    assert!(!body.contains("/api/secondfactor/password"), "only what this configuration enables");
    assert!(!body.contains("<script"), "no script");
    let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
    let operations = doc["paths"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|item| item.as_mapping().unwrap().keys().filter(|k| methods.contains(&k.as_str().unwrap())).count())
        .sum::<usize>();
    assert_eq!(body.matches("<details").count(), operations, "every operation listed once");
}

#[test]
fn base_path_from_server_address() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        config_yaml(port, dir.path(), "").replace(&format!("127.0.0.1:{port}/"), &format!("127.0.0.1:{port}/auth/"));
    let server = Server::start_with(Some(&yaml), port, &[], "/auth/api/health");
    assert_eq!(server.get("/auth/api/health").status, 200);
    assert_eq!(server.get("/auth/api/state").json()["status"], "OK");
    assert_eq!(server.get("/api/health").status, 404);
    assert_eq!(server.get("/authx/api/health").status, 404);
}

#[test]
fn access_log_in_json() {
    let server = start("log: {format: json, level: info}");
    let r = server.get("/api/state?secret-token=should-not-be-logged");
    let id = r.header("x-request-id").unwrap().to_string();
    let out = server.wait_for_log(&id);
    let line = out.lines().find(|l| l.contains(&id)).unwrap_or_else(|| panic!("no access log line in:\n{out}"));
    let entry: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(entry["path"], "/api/state");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["method"], "GET");
    assert!(!out.contains("should-not-be-logged"), "query strings must not be logged");
}

#[test]
fn http2_without_tls() {
    let server = start("");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, body) = runtime.block_on(async {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port)).await.unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        let request = http::Request::get("http://auth.example.com/api/health")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        (status, body)
    });
    assert_eq!(status, 200);
    assert_eq!(&body[..], br#"{"status":"OK"}"#);
}

#[test]
fn sigterm_lets_a_slow_request_finish_and_exits_zero() {
    let mut server = start("");
    // Start a request whose body arrives slowly: it is in flight when SIGTERM lands.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.write_all(
        b"POST /api/health HTTP/1.1\r\nHost: auth.example.com\r\nContent-Length: 10\r\nConnection: close\r\n\r\n12345",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    std::thread::sleep(Duration::from_millis(300));

    // No new connections once shutdown has begun.
    let refused = TcpStream::connect(("127.0.0.1", server.port));
    assert!(refused.is_err(), "a new connection was accepted during shutdown");
    assert!(server.child.try_wait().unwrap().is_none(), "exited before the request in flight finished");

    slow.write_all(b"67890").unwrap();
    let response = read_response(&mut slow).unwrap();
    assert_eq!(response.status, 405, "the in-flight request must get its full response");
    assert_eq!(response.json()["status"], "KO");

    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
    let out = server.wait_for_log("Portcullis stopped");
    assert!(out.contains("SIGTERM received"), "{out}");
}

#[test]
fn a_client_that_half_closes_after_its_request_is_still_answered() {
    use std::io::Read;
    let s = start("");
    // Some clients send a request and then shut their sending side (`nc -N`, scripts):
    // the server does not take that end of input for an abandoned request.
    let mut client = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    client.write_all(b"GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\n\r\n").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = String::new();
    // The answer, then the server closes its side: read_to_string sees the end.
    client.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with(r#"{"status":"OK"}"#), "{answer:?}");
}

#[test]
fn embedded_default_runs_without_configuration() {
    let port = free_port();
    let address = format!("tcp://127.0.0.1:{port}/");
    let server = Server::start(None, port, &[("PORTCULLIS_SERVER_ADDRESS", &address)]);
    assert_eq!(server.get("/api/health").status, 200);
    let secrets = server.dir.path().join("data/secrets.yml");
    assert!(secrets.exists(), "generated secrets are kept in ./data");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
        let data_dir = std::fs::metadata(server.dir.path().join("data")).unwrap();
        assert_eq!(data_dir.permissions().mode() & 0o777, 0o700);
    }
    let out = server.wait_for_log("embedded default");
    assert!(out.contains(&format!("http://localhost:{port}/")), "the log must say where the portal is:\n{out}");
    assert!(!out.contains(&std::fs::read_to_string(&secrets).unwrap()[80..100]), "secrets must not be logged");
}

#[test]
fn session_endpoints_without_a_session() {
    let server = start("");
    let info = server.get("/api/user/info");
    assert_eq!(info.status, 403);
    assert_eq!(info.json(), serde_json::json!({"status": "KO", "message": "Forbidden"}));

    let check =
        request(server.port, "POST", "/api/checks/safe-redirection", &[], r#"{"uri":"https://app.example.com/"}"#);
    assert_eq!(check.status, 401, "{}", check.body);

    let bad = request(server.port, "POST", "/api/checks/safe-redirection", &[], "{not json");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["status"], "KO");

    // Logout without a session still answers, judges the target, and clears the cookie.
    let logout = request(server.port, "POST", "/api/logout", &[], r#"{"targetURL":"https://app.example.com/x"}"#);
    assert_eq!(logout.status, 200);
    assert_eq!(logout.json(), serde_json::json!({"status": "OK", "data": {"safeTargetURL": true}}));
    let cleared = logout.header("set-cookie").unwrap_or_default();
    assert!(cleared.contains("authelia_session=") && cleared.contains("Max-Age=0"), "{cleared}");
    for unsafe_target in [
        "https://evil.example/",
        "https://example.com.evil.net/",
        "http://app.example.com/",
        "javascript:alert(1)",
        "https://user@evil.example@app.example.com/",
    ] {
        let body = format!(r#"{{"targetURL":"{unsafe_target}"}}"#);
        let r = request(server.port, "POST", "/api/logout", &[], &body);
        assert_eq!(r.json()["data"]["safeTargetURL"], false, "{unsafe_target}");
    }

    // A forged cookie is simply no session.
    let forged =
        get(server.port, "/api/state", &[("Cookie", "authelia_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]);
    assert_eq!(forged.json()["data"]["authentication_level"], 0);
}

#[test]
fn connections_beyond_the_cap_wait_for_a_free_slot() {
    use std::io::{Read, Write};
    let s = start_env("", &[("PORTCULLIS_SERVER__MAX_CONNECTIONS", "2")]);
    // Two connections hold both slots with half-sent requests.
    let mut holders: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            c.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n").unwrap();
            c
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // A third is queued by the kernel but not served while both slots are taken.
    let mut third = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    third.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(std::time::Duration::from_millis(500))).unwrap();
    let mut buf = [0u8; 64];
    assert!(third.read(&mut buf).is_err(), "served beyond the cap");
    // Closing one holder frees a slot, and the third is answered.
    drop(holders.pop());
    third.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn oversized_heads_and_bodies_are_refused() {
    let s = start("");
    // A request head beyond server.buffers.read (hyper's floor is 8 KiB): 431, nothing served.
    let big = "x".repeat(20 * 1024);
    let head = get(s.port, "/api/health", &[("X-Padding", big.as_str())]);
    assert_eq!(head.status, 431, "{}", head.body);

    // A body beyond the limit, on the API and on a portal form: 413 with a JSON error.
    let body = format!(r#"{{"username":"john","password":"{}"}}"#, "p".repeat(portcullis::server::MAX_API_BODY));
    for path in ["/api/firstfactor", "/login"] {
        let r = request(s.port, "POST", path, &[("Content-Type", "application/json")], &body);
        assert_eq!(r.status, 413, "{path}: {}", r.body);
        assert_eq!(r.json()["status"], "KO", "{path}: {}", r.body);
    }
    // Just under the limit is read (and refused for what it says, not for its size).
    let fits = format!(r#"{{"username":"john","password":"{}"}}"#, "p".repeat(1000));
    let r = request(s.port, "POST", "/api/firstfactor", &[("Content-Type", "application/json")], &fits);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(s.get("/api/health").status == 200, "still serving");
}

#[test]
fn slow_and_idle_clients_are_cut_off() {
    use std::io::Read;
    let s = start_env("", &[("PORTCULLIS_SERVER__TIMEOUTS__READ", "1s")]);
    let cut_off_within = |stream: &mut TcpStream, limit: Duration| {
        stream.set_read_timeout(Some(limit)).unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        // The server closes the connection (possibly after a 408): read ends, no timeout.
        let outcome = stream.read_to_end(&mut rest);
        assert!(outcome.is_ok(), "still open after {:?}: {outcome:?}", started.elapsed());
        (started.elapsed(), String::from_utf8_lossy(&rest).to_string())
    };

    // Slowloris: half a request head, then silence.
    let mut slow = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    slow.write_all(b"GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\nX-Slow: ").unwrap();
    let (after, answer) = cut_off_within(&mut slow, Duration::from_secs(5));
    assert!(!answer.contains(" 200 "), "a half-sent head was served: {answer}");
    println!("slow head cut off after {after:?}");

    // A body trickling in slower than the read timeout: 408 with a JSON error.
    let mut trickle = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    trickle
        .write_all(b"POST /api/firstfactor HTTP/1.1\r\nHost: auth.example.com\r\nContent-Length: 100\r\n\r\n{\"user")
        .unwrap();
    let (_, answer) = cut_off_within(&mut trickle, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"KO\""), "{answer}");

    // An idle keep-alive connection is closed, not kept forever.
    let mut idle = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    idle.write_all(b"GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n = idle.read(&mut first).unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    let (after, _) = cut_off_within(&mut idle, Duration::from_secs(40));
    println!("idle keep-alive connection closed after {after:?}");
    assert!(s.get("/api/health").status == 200, "still serving");
}
