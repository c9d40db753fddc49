//! The consent page of the OpenID Connect provider: which client asks for what, in the
//! portal's look, with a CSRF-protected form; the decision goes to
//! `flows::oidc::authorize::consent_decide`, which records it and answers the client.

use http::StatusCode;
use minijinja::context;

use super::visit::Visit;
use crate::flows::oidc::{self, authorize};
use crate::handlers::oidc::outcome_response;
use crate::server::response::HttpResponse;

const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

/// The scopes as the consent pages list them: a sentence for the known ones, the name
/// for the others.
pub(super) fn scope_items(v: &Visit<'_>, scopes: &[String]) -> Vec<minijinja::Value> {
    scopes
        .iter()
        .map(|name| {
            let known = KNOWN_SCOPES.contains(&name.as_str());
            let text = if known { v.text(&format!("consent.scope_{name}")) } else { name.clone() };
            context! { name, known, text }
        })
        .collect()
}

pub(super) fn issuer(v: &Visit<'_>) -> String {
    oidc::issuer(v.app, v.request.host()).unwrap_or_default()
}

/// The consent page for the pending request named by `flow`.
pub async fn form(v: &mut Visit<'_>) -> HttpResponse {
    let flow = v.param("flow");
    let issuer = issuer(v);
    let view = match authorize::consent_view(v.app, &v.caller, &flow, &issuer).await {
        Ok(view) => view,
        Err(outcome) => return outcome_response(v, outcome),
    };
    let scopes = scope_items(v, &view.scopes);
    let ctx = context! {
        client_name => view.client_name,
        client_id => view.client_id,
        scopes,
        can_remember => view.can_remember,
        flow,
        username => v.caller.username().to_string(),
    };
    v.render(StatusCode::OK, "consent.html", ctx)
}

/// The user's decision.
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let (flow, accept, remember) = (v.field("flow"), v.field("decision") == "accept", v.field("remember") == "1");
    let issuer = issuer(v);
    let outcome = authorize::consent_decide(v.app, &v.caller, &flow, accept, remember, &issuer).await;
    outcome_response(v, outcome)
}
