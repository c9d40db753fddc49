//! `/api/user/info` (GET, POST): the logged-in user's name, addresses, second-factor setup
//! and preferred method; `POST /api/user/info/2fa_method` records the preference.

use serde::Deserialize;

use super::Request;
use crate::flows::account;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `GET|POST /api/user/info` (403 without a first-factor session, as Authelia).
pub async fn info(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&account::facts(app, caller).await?)))
}

#[derive(Deserialize)]
struct MethodBody {
    method: String,
}

/// `POST /api/user/info/2fa_method`.
pub async fn set_method(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: MethodBody = request.json()?;
        account::set_preferred_method(app, caller, &body.method).await?;
        Ok(response::ok())
    })
}
