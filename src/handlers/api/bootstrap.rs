//! Seed 003's bootstrap: `POST /auth/bootstrap/complete` (and its older alias
//! `POST /api/bootstrap`) creates the first administrator with a one-time token;
//! `POST /auth/bootstrap/tokens` issues a token for an administrator.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{Request, answer, ok_with};
use crate::authn::bootstrap::parse_lifetime;
use crate::flows::Error;
use crate::flows::bootstrap::{self, FirstAdmin};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize)]
struct CompleteBody {
    token: String,
    username: String,
    password: String,
    email: String,
    #[serde(default, alias = "displayname")]
    display_name: Option<String>,
}

/// `POST /auth/bootstrap/complete`, `POST /api/bootstrap`: 201 `{"status":"OK"}` when
/// the administrator was created.
pub async fn complete(app: &App, request: &Request<'_>) -> HttpResponse {
    let created = match request.json::<CompleteBody>() {
        Ok(body) => {
            let admin = FirstAdmin {
                token: &body.token,
                username: &body.username,
                password: &body.password,
                email: &body.email,
                display_name: body.display_name.as_deref(),
            };
            bootstrap::create_first_admin(app, &request.context(app), admin).await
        }
        Err(e) => Err(e),
    };
    answer(created, |()| ok_with(StatusCode::CREATED))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    #[serde(default)]
    ttl: Option<String>,
}

#[derive(Serialize)]
struct Issued {
    token: String,
    expires_at: i64,
}

/// `POST /auth/bootstrap/tokens` `{"ttl": "30m"}` (optional; the body may be empty): 201
/// with the token and its expiry, for an administrator.
pub async fn issue(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: IssueBody = request.json_or_default()?;
        let ttl = body.ttl.as_deref().map(parse_lifetime).transpose().map_err(Error::InvalidRequest)?;
        let (token, expires_at) = bootstrap::issue_token_as(app, caller, ttl).await?;
        let mut r = response::ok_data(&Issued { token, expires_at });
        *r.status_mut() = StatusCode::CREATED;
        Ok(r)
    })
}
