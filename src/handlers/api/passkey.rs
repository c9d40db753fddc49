//! `/api/firstfactor/passkey`: passwordless login with a discoverable credential.
//!
//! GET starts a challenge with no user named (the browser offers the passkeys it holds for
//! this domain, also as autofill), keeping the state in a session created for the purpose.
//! POST identifies the user from the credential's user handle, verifies the assertion
//! against that user's stored passkey, and logs them in under a new session ID. With
//! `webauthn.experimental_enable_passkey_uv_two_factors`, a user-verified passkey counts as
//! both factors.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::PublicKeyCredential;

use super::firstfactor::{BAD_CREDENTIALS, redirect_after_first_factor, session_for};
use super::guard::{self, storage_failed};
use super::webauthn::{ceremony_failed, passkey_of, pending, record_use, take_pending};
use super::{ApiRequest, current, now, store_unavailable, with_cookie};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::SessionData;
use crate::storage::AuthType;

#[derive(Deserialize)]
struct Body {
    response: PublicKeyCredential,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
}

#[derive(Serialize)]
struct Redirect {
    redirect: String,
}

/// GET starts, POST finishes a passwordless login.
pub async fn handle(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let current = match current(app, request).await {
        Ok(Some(c)) => c,
        Ok(None) => return response::ko(StatusCode::FORBIDDEN, "The portal is not under a configured cookie domain"),
        Err(r) => return r,
    };
    let settings = current.settings;
    let sessions = &app.services.sessions;
    let now = now();
    if request.parts.method == Method::GET {
        let (options, state) = match app.services.webauthn.start_discoverable(&settings.domain) {
            Ok(started) => started,
            Err(e) => return ceremony_failed(&e),
        };
        let mut data = current.session.as_ref().map(|s| (*s.data).clone()).unwrap_or_default();
        data.webauthn = Some(pending("passkey_login", state, String::new()));
        // A session is needed to hold the challenge; an existing one keeps its ID (nothing
        // is gained by it), a new anonymous one is created otherwise.
        let saved = match &current.session {
            Some(session) => sessions.update(settings, session, data, now).await.map(|()| None),
            None => sessions.issue(settings, None, data, now).await.map(|(_, cookie)| Some(cookie)),
        };
        return match saved {
            Ok(Some(cookie)) => with_cookie(response::ok_data(&options), &cookie),
            Ok(None) => response::ok_data(&options),
            Err(e) => store_unavailable(&e),
        };
    }

    let body: Body = match request.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(session) = current.session else {
        return response::ko(StatusCode::BAD_REQUEST, "No passkey challenge is pending; start again");
    };
    let mut data = (*session.data).clone();
    let Some(state) = take_pending(&mut data, "passkey_login") else {
        return response::ko(StatusCode::BAD_REQUEST, "No passkey challenge is pending; start again");
    };
    if let Err(e) = sessions.update(settings, &session, data, now).await {
        return store_unavailable(&e);
    }
    let webauthn = &app.services.webauthn;
    let storage = &app.services.storage;
    let refused = || response::ko(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS);
    let Ok((user_handle, credential_id)) = webauthn.identify(&settings.domain, &body.response) else {
        return refused();
    };
    let username = match storage.webauthn_username(&user_handle.to_string()).await {
        Ok(Some(u)) => u,
        Ok(None) => return refused(),
        Err(e) => return storage_failed(&e),
    };
    if let Err(r) = guard::check_ban(app, request, &username).await {
        return r;
    }
    let stored = match storage.webauthn_credentials(&username).await {
        Ok(list) => list,
        Err(e) => return storage_failed(&e),
    };
    let Some(key) = stored
        .iter()
        .filter(|c| c.rp_id == settings.domain)
        .filter_map(passkey_of)
        .find(|k| AsRef::<[u8]>::as_ref(k.cred_id()) == credential_id.as_slice())
    else {
        return refused();
    };
    let result = webauthn.finish_discoverable(&settings.domain, &body.response, &state.state, &key);
    let user_verified = result.as_ref().is_ok_and(|r| r.user_verified());
    let verified = match record_use(app, stored, &credential_id, result).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let user = app.services.users.find_login(&username).filter(|u| !u.disabled && u.username == username);
    let ok = verified && user.is_some();
    let target = body.target_url.as_deref();
    if let Err(r) = guard::record_attempt(app, request, &username, AuthType::Passkey, ok, target).await {
        return r;
    }
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(username = %username, "passkey login refused");
        return refused();
    };

    let two_factors = user_verified && webauthn.passkey_counts_as_two_factors();
    let remember = body.keep_me_logged_in.unwrap_or(false) && !settings.remember_me.is_zero();
    let data = SessionData {
        second_factor_at: two_factors.then_some(now),
        second_factor_method: two_factors.then(|| "passkey".to_string()),
        ..session_for(&user, now, remember)
    };
    let cookie = match sessions.issue(settings, Some(&session.id), data, now).await {
        Ok((_, cookie)) => cookie,
        Err(e) => return store_unavailable(&e),
    };
    tracing::info!(username = %user.username, two_factors, "passkey login succeeded");
    let answer = if two_factors {
        guard::redirect_answer(app, settings, target)
    } else {
        match redirect_after_first_factor(app, settings, target, body.request_method.as_deref(), &user) {
            Some(redirect) => response::ok_data(&Redirect { redirect }),
            None => response::ok(),
        }
    };
    with_cookie(answer, &cookie)
}
