//! The effective configuration, read-only, every secret redacted (secrets serialize as
//! `<redacted>`; the configuration types never hold them in plain form).

use http::StatusCode;
use minijinja::context;

use super::render;
use crate::handlers::portal::visit::Visit;
use crate::server::response::HttpResponse;

/// The page.
pub fn page(v: &mut Visit<'_>) -> HttpResponse {
    let yaml =
        serde_yaml::to_string(&*v.app.config).unwrap_or_else(|e| format!("# cannot show the configuration: {e}"));
    render(v, StatusCode::OK, "admin_settings.html", context! { yaml })
}
