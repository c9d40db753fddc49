//! `POST /api/bootstrap`: creates the first administrator with the one-time token logged at
//! startup (only while no user exists).

use http::StatusCode;
use serde::Deserialize;

use super::{Request, answer, ok_with};
use crate::flows::bootstrap::{self, FirstAdmin};
use crate::server::App;
use crate::server::response::HttpResponse;

#[derive(Deserialize)]
struct Body {
    token: String,
    username: String,
    password: String,
    email: String,
    #[serde(default)]
    displayname: Option<String>,
}

/// 201 when the administrator was created.
pub async fn post(app: &App, request: &Request<'_>) -> HttpResponse {
    let created = match request.json::<Body>() {
        Ok(body) => {
            let admin = FirstAdmin {
                token: &body.token,
                username: &body.username,
                password: &body.password,
                email: &body.email,
                display_name: body.displayname.as_deref(),
            };
            bootstrap::create_first_admin(app, admin).await
        }
        Err(e) => Err(e),
    };
    answer(created, |()| ok_with(StatusCode::CREATED))
}
