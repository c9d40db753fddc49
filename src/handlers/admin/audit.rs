//! The console's audit page: filters (user, event, since, until), pages newest first, and
//! the same selection as CSV or JSON.

use http::StatusCode;
use http::header::{self, HeaderValue};
use minijinja::{Value, context};

use super::render;
use crate::clock::rfc3339;
use crate::flows::Error;
use crate::flows::admin;
use crate::handlers::portal::visit::Visit;
use crate::server::response::{self, HttpResponse};
use crate::storage::{AuditFilter, AuditRecord};

/// An export format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, one event a line.
    Csv,
    /// A JSON array.
    Json,
}

/// Most events an export holds.
const EXPORT_LIMIT: i64 = 500;

/// A time from a filter field: Unix seconds, RFC 3339, or a date (`2026-11-29`).
fn time(text: &str) -> Result<Option<i64>, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(Some(secs));
    }
    let with_time = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    let at = humantime::parse_rfc3339_weak(&with_time)
        .map_err(|_| Error::InvalidRequest(format!("'{text}' is not a date or time")))?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(Some(i64::try_from(secs).unwrap_or(i64::MAX)))
}

fn filter(v: &Visit<'_>, limit: i64) -> Result<AuditFilter, Error> {
    let text = |name: &str| Some(v.param(name)).filter(|s| !s.trim().is_empty());
    Ok(AuditFilter {
        user: text("user"),
        event: text("event"),
        since: time(&v.param("since"))?,
        until: time(&v.param("until"))?,
        before: text("cursor").and_then(|c| c.parse().ok()),
        limit,
    })
}

/// The filter as a query string (for the pager and the export links).
fn query(v: &Visit<'_>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for name in ["user", "event", "since", "until"] {
        q.append_pair(name, &v.param(name));
    }
    q.finish()
}

/// The page.
pub async fn page(v: &mut Visit<'_>) -> HttpResponse {
    let (events, next, error) = match filter(v, 50) {
        Ok(f) => match admin::audit_events(v.app, &v.caller, f).await {
            Ok(page) => (page.events, page.next_cursor, None),
            Err(e) if e.status().is_server_error() => return v.error_page(&e),
            Err(e) => (Vec::new(), None, Some(e)),
        },
        Err(e) => (Vec::new(), None, Some(e)),
    };
    let rows: Vec<Value> = events
        .into_iter()
        .map(|e| {
            context! {
                time => rfc3339(e.time), event => e.event, outcome => e.outcome, actor => e.actor,
                subject => e.subject, ip => e.remote_ip, request_id => e.request_id, detail => e.detail,
            }
        })
        .collect();
    let q = query(v);
    let next = next.map(|cursor| format!("{}?{q}&cursor={cursor}", v.local("/admin/audit")));
    let status = error.as_ref().map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        rows, next,
        user => v.param("user"), event => v.param("event"), since => v.param("since"), until => v.param("until"),
        csv => format!("{}?{q}", v.local("/admin/audit.csv")),
        json => format!("{}?{q}", v.local("/admin/audit.json")),
        error => error.map(|e| e.text(v.lang)),
    };
    render(v, status, "admin_audit.html", ctx)
}

/// The selection as a file to download (the newest [`EXPORT_LIMIT`] events).
pub async fn export(v: &mut Visit<'_>, format: Format) -> HttpResponse {
    let events = match filter(v, EXPORT_LIMIT) {
        Ok(f) => match admin::audit_events(v.app, &v.caller, f).await {
            Ok(page) => page.events,
            Err(e) => return v.error_page(&e),
        },
        Err(e) => return v.error_page(&e),
    };
    let (content_type, name, body) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv", csv(&events)),
        Format::Json => (
            "application/json; charset=utf-8",
            "audit.json",
            serde_json::to_string_pretty(&events).unwrap_or_else(|_| "[]".into()),
        ),
    };
    let mut r = response::bytes(StatusCode::OK, content_type, body);
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    r
}

/// One CSV field: quoted, quotes doubled; a leading `=+-@` neutralised so a spreadsheet
/// never runs a formula an attacker put in a username or User-Agent.
fn field(text: &str) -> String {
    let safe = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_string() };
    format!("\"{}\"", safe.replace('"', "\"\""))
}

fn csv(events: &[AuditRecord]) -> String {
    let mut out = String::from("time,event,outcome,actor,subject,ip,user_agent,request_id,detail\r\n");
    for e in events {
        let line = [
            rfc3339(e.time),
            e.event.clone(),
            e.outcome.clone(),
            e.actor.clone(),
            e.subject.clone(),
            e.remote_ip.clone(),
            e.user_agent.clone(),
            e.request_id.clone(),
            e.detail.clone(),
        ]
        .iter()
        .map(|f| field(f))
        .collect::<Vec<_>>()
        .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(field("john"), "\"john\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1+2"), "\"'-1+2\"");
    }

    #[test]
    fn times() {
        assert_eq!(time("").unwrap(), None);
        assert_eq!(time("100").unwrap(), Some(100));
        assert_eq!(time("1970-01-02").unwrap(), Some(86_400));
        assert_eq!(time("1970-01-01T00:01:00Z").unwrap(), Some(60));
        assert!(time("yesterday").is_err());
    }
}
