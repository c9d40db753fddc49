//! Seed 004's small pages: the account summary a host other than the dedicated auth host
//! shows at `/` (who is signed in, and the way to the auth host), and the "permission
//! denied" page at `/restricted`.

use http::StatusCode;
use minijinja::context;

use super::visit::{Visit, link};
use crate::server::response::HttpResponse;

/// The account summary: the signed-in user's name, or that nobody is; links lead to the
/// auth host, where the portal is.
pub fn account_summary(v: &mut Visit<'_>) -> HttpResponse {
    let origin = v.app.host_mode.auth_origin().unwrap_or_default().to_string();
    let user = v
        .caller
        .data()
        .filter(|d| !d.username.is_empty())
        .map(|d| if d.display_name.is_empty() { d.username.clone() } else { d.display_name.clone() });
    let ctx = context! { user, origin };
    v.render(StatusCode::OK, "summary.html", ctx)
}

/// `/restricted`: what a user sees where their account has no access.
pub fn restricted(v: &mut Visit<'_>) -> HttpResponse {
    let ctx = context! {
        title_key => "restricted.title",
        error => v.text("restricted.text"),
        links => vec![link("/", "common.back_to_profile")],
    };
    v.render(StatusCode::FORBIDDEN, "message.html", ctx)
}
