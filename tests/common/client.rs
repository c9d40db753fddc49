//! A tiny HTTP client for API flows: remembers the session cookie the server sets, and any
//! other cookie (a passkey challenge), like a browser would.

use std::collections::BTreeMap;

use super::{Response, request};

/// The session cookie's name in the test configurations.
const SESSION: &str = "authelia_session";

pub struct Client {
    pub port: u16,
    /// The session cookie (`name=value`), if any.
    pub cookie: Option<String>,
    /// Other cookies by name.
    pub others: BTreeMap<String, String>,
}

impl Client {
    pub fn new(port: u16) -> Self {
        Self { port, cookie: None, others: BTreeMap::new() }
    }

    /// Sends a JSON request with the current cookies; keeps the cookies set (forgets those
    /// the server expires).
    pub fn call(&mut self, method: &str, path: &str, body: &str) -> Response {
        let mut headers = vec![("Content-Type", "application/json")];
        let mut jar: Vec<String> = self.cookie.iter().cloned().collect();
        jar.extend(self.others.iter().map(|(k, v)| format!("{k}={v}")));
        let jar = jar.join("; ");
        if !jar.is_empty() {
            headers.push(("Cookie", jar.as_str()));
        }
        let r = request(self.port, method, path, &headers, body);
        for (name, set) in r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")) {
            let _ = name;
            let pair = set.split(';').next().unwrap().trim().to_string();
            let expired = set.contains("Max-Age=0") || pair.ends_with('=');
            let (cookie_name, value) = pair.split_once('=').unwrap();
            if cookie_name == SESSION {
                self.cookie = if expired { None } else { Some(pair.clone()) };
            } else if expired {
                self.others.remove(cookie_name);
            } else {
                self.others.insert(cookie_name.to_string(), value.to_string());
            }
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
