//! The audit trail: every security event — authentication attempts and bans, second
//! factors added or removed, password changes and resets, sessions revoked, every admin
//! action — with who did it, to whom, from where (address, User-Agent, request ID) and
//! how it ended. Each event is a row in the database (`GET /api/admin/audit`) and one
//! structured log line (target `portcullis::audit`).
//!
//! Recording never fails the operation it describes: the action has happened; a row that
//! cannot be written is logged as an error instead.

use std::net::IpAddr;

use serde_json::Value;

use crate::clock::now;
use crate::server::App;
use crate::storage::AuditRecord;

/// Where a request came from, as the audit trail records it.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The client address (trusted proxies applied).
    pub ip: Option<IpAddr>,
    /// The client's User-Agent.
    pub user_agent: String,
    /// The request's ID.
    pub request_id: crate::server::RequestId,
}

impl Context {
    /// The address as text (empty when unknown).
    pub fn ip_text(&self) -> String {
        self.ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// How an event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It happened.
    Success,
    /// It was tried and failed (a wrong secret).
    Failure,
    /// It was refused without being tried (a ban).
    Refused,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Refused => "refused",
        }
    }
}

/// One event to record.
pub struct Event<'a> {
    /// Its name, e.g. `authentication`, `second_factor.added`, `admin.user.deleted`.
    pub name: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Who did it (empty when anonymous).
    pub actor: &'a str,
    /// Whom it concerned.
    pub subject: &'a str,
    /// Event-specific facts (a JSON object; never secrets).
    pub detail: Value,
}

/// Records `event` from `context`.
pub async fn record(app: &App, context: &Context, event: Event<'_>) {
    let ip = context.ip_text();
    let detail = if event.detail.is_null() { "{}".to_string() } else { event.detail.to_string() };
    tracing::info!(
        target: "portcullis::audit",
        event = event.name,
        outcome = event.outcome.as_str(),
        actor = %event.actor,
        subject = %event.subject,
        ip = %ip,
        request_id = %context.request_id,
        detail = %detail,
        "audit"
    );
    let record = AuditRecord {
        id: 0,
        time: now(),
        event: event.name.to_string(),
        outcome: event.outcome.as_str().to_string(),
        actor: event.actor.to_string(),
        subject: event.subject.to_string(),
        remote_ip: ip,
        user_agent: context.user_agent.clone(),
        request_id: context.request_id.to_string(),
        detail,
    };
    if let Err(e) = app.services.storage.audit_append(record).await {
        tracing::error!(error = %e, event = event.name, "cannot write an audit event");
    }
}

/// Removes audit events older than `audit.retention`, every hour (0 keeps them forever).
pub fn prune_periodically(app: std::sync::Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
    let retention = i64::try_from(app.config.audit.retention.get().as_secs()).unwrap_or(i64::MAX);
    if retention == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match app.services.storage.audit_prune(now().saturating_sub(retention)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "old audit events removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove old audit events"),
            }
        }
    }))
}
