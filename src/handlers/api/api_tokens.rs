//! Personal API tokens under `/api/auth` (seed 001): `POST me/create-token`,
//! `POST me/tokens` (the list), `DELETE me/tokens/{id}`, `GET verify-token?token=`.
//! Times are Unix milliseconds, as the seed gives them.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Request, answer};
use crate::config::types::Duration;
use crate::flows::Error;
use crate::flows::api_tokens::{self, NewToken};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::storage::ApiTokenRecord;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct CreateBody {
    name: Option<String>,
    /// Seconds (a number) or a duration such as `30d` or `1h30m`.
    expires_in: Option<Value>,
    scopes: Vec<String>,
}

/// A token as created: the value, once.
#[derive(Serialize)]
struct CreatedView {
    id: i32,
    token: String,
    name: String,
    prefix: String,
    created_at: i64,
    expires_at: Option<i64>,
    scopes: Vec<String>,
}

/// A token as listed: never its value or hash.
#[derive(Serialize)]
struct TokenView {
    id: i32,
    name: String,
    prefix: String,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
    scopes: Vec<String>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(r: ApiTokenRecord) -> Self {
        Self {
            id: r.id,
            scopes: r.scope_list(),
            name: r.name,
            prefix: r.prefix,
            created_at: ms(r.created_at),
            last_used_at: r.last_used_at.map(ms),
            expires_at: r.expires_at.map(ms),
        }
    }
}

/// Unix seconds as Unix milliseconds.
fn ms(secs: i64) -> i64 {
    secs.saturating_mul(1000)
}

/// `expires_in` as a lifespan: a positive whole number of seconds, or a duration string.
fn lifespan(value: Option<&Value>) -> Result<Option<std::time::Duration>, Error> {
    let invalid = || Error::InvalidRequest("expires_in: a number of seconds or a duration such as '30d'".into());
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(|s| Some(std::time::Duration::from_secs(s))).ok_or_else(invalid),
        Some(Value::String(s)) => Duration::from_str(s).map(|d| Some(d.get())).map_err(|_| invalid()),
        Some(_) => Err(invalid()),
    }
}

/// `POST /api/auth/me/create-token`.
pub async fn create(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CreateBody = request.json_or_default()?;
        let new = NewToken { name: body.name, expires_in: lifespan(body.expires_in.as_ref())?, scopes: body.scopes };
        let c = api_tokens::create(app, caller, new).await?;
        Ok(response::ok_data(&CreatedView {
            id: c.id,
            token: c.token,
            name: c.name,
            prefix: c.prefix,
            created_at: ms(c.created_at),
            expires_at: c.expires_at.map(ms),
            scopes: c.scopes,
        }))
    })
}

/// `POST /api/auth/me/tokens`.
pub async fn list(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let tokens = api_tokens::list(app, caller).await?;
        Ok(response::ok_data(&tokens.into_iter().map(TokenView::from).collect::<Vec<_>>()))
    })
}

/// `DELETE /api/auth/me/tokens/{id}`.
pub async fn revoke(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let id = request.last_segment().parse().map_err(|_| Error::NoSuchToken)?;
        api_tokens::revoke(app, caller, id).await?;
        Ok(response::ok())
    })
}

/// `GET /api/auth/verify-token?token=`: `true` or `false`; no session needed.
pub async fn verify(app: &App, request: &Request<'_>) -> HttpResponse {
    let token = request.query().into_iter().find(|(k, _)| k == "token").map(|(_, v)| v);
    let outcome = match token {
        None => Err(Error::InvalidRequest("the token query parameter is required".into())),
        Some(token) => api_tokens::check(app, &request.context(app), &token).await,
    };
    answer(outcome, |valid| response::ok_data(&valid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifespans_read_as_seconds_or_durations() {
        let secs = |v: Value| lifespan(Some(&v)).map(|d| d.map(|d| d.as_secs()));
        assert_eq!(secs(Value::Null).unwrap(), None);
        assert_eq!(secs(serde_json::json!(3600)).unwrap(), Some(3600));
        assert_eq!(secs(serde_json::json!("1h30m")).unwrap(), Some(5400));
        assert_eq!(secs(serde_json::json!("30d")).unwrap(), Some(30 * 86_400));
        for bad in [serde_json::json!(-1), serde_json::json!(1.5), serde_json::json!("soon"), serde_json::json!([1])] {
            assert!(secs(bad.clone()).is_err(), "{bad}");
        }
    }
}
