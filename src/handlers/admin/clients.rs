//! The OpenID Connect clients, read-only: ID, name, public or confidential, redirect
//! URIs, scopes and authorization policy. Secrets are never read here.

use http::StatusCode;
use minijinja::context;

use super::render;
use crate::handlers::portal::visit::Visit;
use crate::server::response::HttpResponse;

/// The page.
pub fn page(v: &mut Visit<'_>) -> HttpResponse {
    let clients: Vec<minijinja::Value> = v
        .app
        .services
        .oidc
        .iter()
        .flat_map(|p| p.clients.all())
        .map(|c| {
            context! {
                id => c.id(),
                name => c.config.client_name.clone(),
                public => c.is_public(),
                redirect_uris => c.config.redirect_uris.as_slice().to_vec(),
                scopes => c.config.scopes.join(" "),
                policy => c.config.authorization_policy.clone(),
            }
        })
        .collect();
    render(v, StatusCode::OK, "admin_clients.html", context! { clients })
}
