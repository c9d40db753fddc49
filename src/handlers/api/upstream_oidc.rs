//! `/auth/provider/oidc` (seed 003): the upstream OpenID provider's settings, for
//! administrators (an admin session, or an admin's bearer token).

use super::Request;
use crate::flows::upstream_oidc::{self, ProviderChange};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `GET /auth/provider/oidc`: the settings in force, without the client secret.
pub async fn get(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&upstream_oidc::provider(app, caller).await?)))
}

/// `PUT /auth/provider/oidc`: 204 once checked, probed and stored.
pub async fn put(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let change: ProviderChange = request.json()?;
        upstream_oidc::set_provider(app, caller, change).await?;
        Ok(super::ok_with(http::StatusCode::NO_CONTENT))
    })
}
