//! A tiny HTTP client for API flows: remembers the session cookie the server sets, like a
//! browser would for one cookie name.

use super::{Response, request};

pub struct Client {
    pub port: u16,
    pub cookie: Option<String>,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self { port, cookie: None }
    }

    /// Sends a JSON request with the current cookie; keeps any new cookie (cleared when the
    /// server expires it).
    pub fn call(&mut self, method: &str, path: &str, body: &str) -> Response {
        let mut headers = vec![("Content-Type", "application/json")];
        let cookie = self.cookie.clone();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c.as_str()));
        }
        let r = request(self.port, method, path, &headers, body);
        if let Some(set) = r.header("set-cookie") {
            let pair = set.split(';').next().unwrap().trim().to_string();
            let expired = set.contains("Max-Age=0") || pair.ends_with('=');
            self.cookie = if expired { None } else { Some(pair) };
        }
        r
    }

    pub fn json(&mut self, method: &str, path: &str, body: serde_json::Value) -> Response {
        self.call(method, path, &body.to_string())
    }

    /// The session's authentication level from /api/state.
    pub fn level(&mut self) -> i64 {
        self.call("GET", "/api/state", "").json()["data"]["authentication_level"].as_i64().unwrap()
    }
}
