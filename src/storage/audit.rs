//! The audit log: security events with who, whom, from where and how it ended.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::audit_log as audit;
use super::{Storage, StorageError};

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Row ID (the listing cursor).
    pub id: i32,
    /// Unix seconds.
    pub time: i64,
    /// What happened (`authentication`, `password.changed`, `admin.user.deleted`, ...).
    pub event: String,
    /// `success`, `failure` or `refused`.
    pub outcome: String,
    /// Who did it (empty when anonymous).
    pub actor: String,
    /// Whom it concerned.
    pub subject: String,
    /// The client address.
    pub remote_ip: String,
    /// The client's User-Agent.
    pub user_agent: String,
    /// The request's ID (as in the access log and `X-Request-Id`).
    pub request_id: String,
    /// Event-specific facts, a JSON object.
    pub detail: String,
}

/// Which events to list: newest first, before `before` (the cursor).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Events about this user (as actor or subject).
    pub user: Option<String>,
    /// This event only (a trailing `*` matches a prefix, e.g. `admin.*`).
    pub event: Option<String>,
    /// At or after this time.
    pub since: Option<i64>,
    /// Before this time.
    pub until: Option<i64>,
    /// Rows with IDs below this one (the cursor).
    pub before: Option<i32>,
    /// At most this many.
    pub limit: i64,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

type Row = (i32, i64, String, String, String, String, String, String, String, String);

impl Storage {
    /// Appends an event.
    pub async fn audit_append(&self, record: AuditRecord) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let r = &record;
                let insert = diesel::insert_into(audit::table).values((
                    audit::time.eq(r.time),
                    audit::event.eq(truncate(&r.event, 64)),
                    audit::outcome.eq(truncate(&r.outcome, 16)),
                    audit::actor.eq(truncate(&r.actor, 100)),
                    audit::subject.eq(truncate(&r.subject, 100)),
                    audit::remote_ip.eq(truncate(&r.remote_ip, 47)),
                    audit::user_agent.eq(truncate(&r.user_agent, 512)),
                    audit::request_id.eq(truncate(&r.request_id, 64)),
                    audit::detail.eq(&r.detail),
                ));
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Events per `filter`, newest first.
    pub async fn audit_list(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StorageError> {
        let rows: Vec<Row> = self
            .run(move |conn| {
                async move {
                    let f = &filter;
                    Ok(per_backend!(conn, |c| {
                        let mut query = audit::table
                            .select((
                                audit::id,
                                audit::time,
                                audit::event,
                                audit::outcome,
                                audit::actor,
                                audit::subject,
                                audit::remote_ip,
                                audit::user_agent,
                                audit::request_id,
                                audit::detail,
                            ))
                            .order(audit::id.desc())
                            .limit(f.limit)
                            .into_boxed();
                        if let Some(user) = &f.user {
                            query = query.filter(audit::subject.eq(user).or(audit::actor.eq(user)));
                        }
                        match f.event.as_deref().map(|e| (e.strip_suffix('*'), e)) {
                            Some((Some(prefix), _)) => {
                                let escaped = prefix.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                                query = query.filter(audit::event.like(format!("{escaped}%")).escape('\\'));
                            }
                            Some((None, event)) => query = query.filter(audit::event.eq(event)),
                            None => {}
                        }
                        if let Some(since) = f.since {
                            query = query.filter(audit::time.ge(since));
                        }
                        if let Some(until) = f.until {
                            query = query.filter(audit::time.lt(until));
                        }
                        if let Some(before) = f.before {
                            query = query.filter(audit::id.lt(before));
                        }
                        query.load::<Row>(c).await
                    })?)
                }
                .boxed()
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, time, event, outcome, actor, subject, remote_ip, user_agent, request_id, detail)| AuditRecord {
                id,
                time,
                event,
                outcome,
                actor,
                subject,
                remote_ip,
                user_agent,
                request_id,
                detail,
            })
            .collect())
    }

    /// Removes events older than `before`; returns how many.
    pub async fn audit_prune(&self, before: i64) -> Result<usize, StorageError> {
        self.run(move |conn| {
            async move {
                let delete = diesel::delete(audit::table.filter(audit::time.lt(before)));
                Ok(per_backend!(conn, |c| delete.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }
}
