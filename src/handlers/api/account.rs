//! `/api/user/info` (GET, POST): the logged-in user's name, addresses, second-factor setup
//! and preferred method; `POST /api/user/info/2fa_method` records the preference.

use serde::Deserialize;

use super::Request;
use crate::flows::account;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `GET|POST /api/user/info` (403 without a first-factor session, as Authelia).
///
/// The addresses are partly hidden, as Authelia's are: enough for the user to recognise
/// which mailbox a code goes to, not enough for whoever holds a stolen session cookie to
/// learn it.
pub async fn info(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let mut facts = account::facts(app, caller).await?;
        facts.emails = facts.emails.iter().map(|e| redact_email(e)).collect();
        Ok(response::ok_data(&facts))
    })
}

/// `john.doe@example.com` → `j******e@example.com`: the local part's first and last
/// characters (one only when it is that short), the domain whole.
fn redact_email(address: &str) -> String {
    let Some((local, domain)) = address.rsplit_once('@') else { return "*".repeat(address.chars().count()) };
    let chars: Vec<char> = local.chars().collect();
    let hidden = match chars.len() {
        0 => String::new(),
        1 | 2 => format!("{}{}", chars[0], "*".repeat(chars.len() - 1)),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    };
    format!("{hidden}@{domain}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_partly_hidden() {
        for (address, shown) in [
            ("john.doe@example.com", "j******e@example.com"),
            ("jo@example.com", "j*@example.com"),
            ("j@example.com", "j@example.com"),
            ("élodie@exemple.fr", "é****e@exemple.fr"),
            ("not-an-address", "**************"),
        ] {
            assert_eq!(super::redact_email(address), shown);
        }
    }
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
