//! `/api/health/ready`: whether this instance can serve, for load balancers and
//! Kubernetes readiness probes. `/api/health` stays a constant answer (the process is up);
//! this one asks the dependencies the configuration uses.
//!
//! - the session store: Redis answers a PING (the memory store is always ready);
//! - the database: `SELECT 1` through the pool;
//! - the notifier: the file notifier's file can be opened for appending; SMTP is reported
//!   from its last connection (re-tried while it is failing) but does not make the
//!   instance unready: every instance shares the mail server, so taking them all out of
//!   rotation would turn a mail outage into a login outage;
//! - the LDAP directory, when users live there: the service account binds. Reported, not
//!   required, for the same reason: existing sessions keep working while it is down.
//!
//! An answer is reused for a second, and concurrent probes wait for the one check in
//! flight, so probes cannot hammer the dependencies. Each check is bounded in time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;
use serde::Serialize;

use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// How long an answer is reused.
const REUSE_FOR: Duration = Duration::from_secs(1);
/// Longest a single dependency may take to answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Answering.
    Up,
    /// Not answering (or not in time).
    Down,
}

/// The states of the dependencies, and the verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Sessions (`memory` or `redis`).
    pub session_store: Dependency,
    /// The SQL database.
    pub storage: Dependency,
    /// Outgoing mail (`filesystem` or `smtp`).
    pub notifier: Dependency,
    /// The users directory (`ldap`), when the users backend is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<Dependency>,
}

/// One dependency's state.
#[derive(Clone, Debug, Serialize)]
pub struct Dependency {
    /// What it is (`redis`, `postgres`, `smtp`, ...).
    pub kind: &'static str,
    /// Whether it answered.
    pub status: State,
    /// Whether its being down makes the instance unready.
    pub required: bool,
}

impl Report {
    /// Ready when every required dependency is up.
    pub fn ready(&self) -> bool {
        [&self.session_store, &self.storage, &self.notifier].iter().all(|d| !d.required || d.status == State::Up)
    }

    fn down(&self) -> Vec<&'static str> {
        [("session_store", &self.session_store), ("storage", &self.storage), ("notifier", &self.notifier)]
            .into_iter()
            .filter(|(_, d)| d.required && d.status == State::Down)
            .map(|(name, _)| name)
            .collect()
    }
}

/// Runs the checks, at most once a second.
#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Report)>>,
    running: tokio::sync::Mutex<()>,
}

impl Readiness {
    fn fresh(&self) -> Option<Report> {
        let last = self.last.lock().ok()?;
        last.as_ref().filter(|(at, _)| at.elapsed() < REUSE_FOR).map(|(_, r)| r.clone())
    }

    /// The current report (reused if less than a second old).
    pub async fn report(&self, app: &App) -> Report {
        if let Some(report) = self.fresh() {
            return report;
        }
        let _one_at_a_time = self.running.lock().await;
        // Another probe may have refreshed it while this one waited.
        if let Some(report) = self.fresh() {
            return report;
        }
        let report = check(app).await;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), report.clone()));
        }
        report
    }
}

async fn bounded(check: impl Future<Output = bool>) -> State {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(true) => State::Up,
        _ => State::Down,
    }
}

async fn check(app: &App) -> Report {
    let services = &app.services;
    let sessions = async {
        let status = bounded(async { services.sessions.store().ping().await.is_ok() }).await;
        Dependency { kind: services.sessions.store().kind(), status, required: true }
    };
    let storage = async {
        let status = bounded(async { services.storage.ping().await.is_ok() }).await;
        Dependency { kind: services.storage.backend().name(), status, required: true }
    };
    let notifier = async {
        let status = bounded(services.notifier.ready()).await;
        let kind = services.notifier.kind();
        Dependency { kind, status, required: kind != "smtp" }
    };
    let users = async {
        let ldap = services.users.ldap()?;
        let status = bounded(ldap.ping()).await;
        Some(Dependency { kind: "ldap", status, required: false })
    };
    let (session_store, storage, notifier, users) = tokio::join!(sessions, storage, notifier, users);
    let report = Report { session_store, storage, notifier, users };
    if let Some(m) = super::metrics::get() {
        m.dependency("session_store", report.session_store.status == State::Up);
        m.dependency("storage", report.storage.status == State::Up);
        m.dependency("notifier", report.notifier.status == State::Up);
        if let Some(users) = &report.users {
            m.dependency("users", users.status == State::Up);
        }
    }
    for name in report.down() {
        tracing::warn!(dependency = name, "readiness: a required dependency is down");
    }
    report
}

/// Answers `GET|HEAD /api/health/ready`: 200 with the states when ready, 503 otherwise.
pub async fn answer(app: &App) -> HttpResponse {
    let report = app.readiness.report(app).await;
    if report.ready() {
        return response::ok_data(&report);
    }
    let message = format!("not ready: {} down", report.down().join(", "));
    let body = serde_json::json!({"status": "KO", "message": message, "data": report});
    response::bytes(StatusCode::SERVICE_UNAVAILABLE, "application/json; charset=utf-8", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(status: State, required: bool) -> Dependency {
        Dependency { kind: "x", status, required }
    }

    #[test]
    fn only_required_dependencies_decide() {
        let mut r = Report {
            session_store: dep(State::Up, true),
            storage: dep(State::Up, true),
            notifier: dep(State::Down, false),
            users: Some(dep(State::Down, false)),
        };
        assert!(r.ready());
        r.storage = dep(State::Down, true);
        assert!(!r.ready());
        assert_eq!(r.down(), ["storage"]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["storage"]["status"], "down");
        assert_eq!(json["notifier"]["required"], false);
    }
}
