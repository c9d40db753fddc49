//! `GET /auth/{token}`: the page a device-addition link opens on the new device. It says
//! whose account the link is for and offers to add a passkey on this device; the script
//! (`/static/js/passkey.js`, beside the other ceremonies) runs the registration through the link's JSON steps. A
//! link that is malformed, unknown, expired or used answers 404 with a page saying so.

use http::StatusCode;
use minijinja::context;

use super::visit::{Visit, link};
use crate::flows::{Error, device_links};
use crate::server::response::HttpResponse;

/// The link's page.
pub async fn show(v: &mut Visit<'_>) -> HttpResponse {
    let token = v.request.segment(2);
    match device_links::describe(v.app, &token).await {
        Ok(view) => {
            let ctx = context! { display_name => view.display_name, token, expires_at => view.expires_at };
            v.render(StatusCode::OK, "device_link.html", ctx)
        }
        Err(Error::DeviceLinkInvalid) => {
            let ctx = context! {
                title_key => "device_link.invalid_title",
                error => v.text("error.device_link_invalid"),
                links => vec![link("/login", "login.title")],
            };
            v.render(StatusCode::NOT_FOUND, "message.html", ctx)
        }
        Err(e) => v.error_page(&e),
    }
}
