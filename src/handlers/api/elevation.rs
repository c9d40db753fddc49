//! `/api/user/session/elevation`: GET reports the state, POST mails a code (returning the
//! ID that cancels it), PUT checks the code and elevates the session, and `DELETE /{id}`
//! cancels a pending code (no session needed: the ID is an unguessable UUID).

use serde::{Deserialize, Serialize};

use super::{Request, answer};
use crate::flows::elevation;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `GET`.
pub async fn status(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&elevation::status(app, caller).await?)))
}

#[derive(Serialize)]
struct Started {
    delete_id: String,
}

/// `POST`.
pub async fn start(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        Ok(response::ok_data(&Started { delete_id: elevation::start(app, caller).await? }))
    })
}

#[derive(Deserialize)]
struct VerifyBody {
    otc: String,
}

/// `PUT`.
pub async fn verify(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: VerifyBody = request.json()?;
        elevation::verify(app, caller, &body.otc).await?;
        Ok(response::ok())
    })
}

/// `DELETE /{id}`.
pub async fn revoke(app: &App, request: &Request<'_>) -> HttpResponse {
    answer(elevation::revoke(app, request.last_segment()).await, |()| response::ok())
}
