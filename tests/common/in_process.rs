//! The application answering requests in-process, without a socket: the real router,
//! handlers, storage (SQLite in a temporary directory), memory sessions and file notifier,
//! driven by a small cookie-keeping browser. (The configured listen address is never
//! bound.)

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use portcullis::config::{LoadOptions, load};
use portcullis::server::App;
use portcullis::services::Services;

/// One user of the users file.
pub struct TestUser<'a> {
    pub name: &'a str,
    pub password: &'a str,
    pub groups: &'a [&'a str],
}

/// The application and the directory holding its files.
pub struct TestApp {
    pub app: Arc<App>,
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// An application for `extra` YAML on top of the minimal test configuration, with
    /// `users` in its users file.
    pub async fn start(extra: &str, users: &[TestUser<'_>]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = String::from("users:\n");
        for u in users {
            yaml.push_str(&format!(
                "  {name}:\n    displayname: '{name} Doe'\n    password: '{hash}'\n    email: '{name}@example.com'\n    groups: [{groups}]\n",
                name = u.name,
                hash = super::argon2_hash(u.password),
                groups = u.groups.join(", ")
            ));
        }
        std::fs::write(dir.path().join("users.yml"), yaml).unwrap();
        let config_path = dir.path().join("configuration.yml");
        std::fs::write(&config_path, super::config_yaml(9091, dir.path(), extra)).unwrap();
        let loaded = load(&LoadOptions { files: vec![config_path], strict: true, ..Default::default() })
            .unwrap_or_else(|e| panic!("{e}"));
        let config = Arc::new(loaded.config);
        let services = Services::open(&config).await.unwrap_or_else(|e| panic!("{e}"));
        let app = App::new(config, services).unwrap_or_else(|e| panic!("{e}"));
        Self { app: Arc::new(app), dir }
    }

    /// The directory of the database, users file and notifications.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A browser with no cookies, on the portal's host.
    pub fn browser(&self) -> Browser {
        Browser { app: self.app.clone(), cookies: BTreeMap::new(), host: "auth.example.com".into() }
    }

    /// The code in the newest message of the file notifier.
    pub fn last_code(&self) -> String {
        super::last_code(self.path())
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no CSRF token in: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// Keeps cookies between requests, as a browser does for one host.
pub struct Browser {
    app: Arc<App>,
    pub cookies: BTreeMap<String, String>,
    pub host: String,
}

impl Browser {
    /// Sends a request from 127.0.0.1 with the kept cookies; keeps the cookies set.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut builder = Request::builder().method(method).uri(path).header("host", self.host.as_str());
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header("cookie", jar.join("; "));
        }
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        let remote: IpAddr = "127.0.0.1".parse().unwrap();
        let response = self.app.handle(request, Some(remote)).await;
        let (parts, body) = response.into_parts();
        for set in parts.headers.get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") || value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Reply { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    /// GET.
    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, &[], "").await
    }

    /// A JSON API call.
    pub async fn api(&mut self, method: &str, path: &str, body: serde_json::Value) -> Reply {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        self.send(method, path, &[("content-type", "application/json")], &body).await
    }

    /// Posts a portal form from the portal's own origin, with the token of `page`.
    pub async fn submit(&mut self, page: &Reply, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", &page.csrf());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let origin = format!("https://{}", self.host);
        let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", origin.as_str())];
        self.send("POST", path, &headers, &form.finish()).await
    }
}
