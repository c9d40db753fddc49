//! What operators see of a running server: Prometheus metrics on a listener of their own
//! ([`metrics`], [`listener`]), OpenTelemetry traces over OTLP ([`traces`]) and the
//! readiness check behind `/api/health/ready` ([`readiness`]).
//!
//! The rest of the server reaches telemetry through the few functions below, one call per
//! hook, each of which does nothing when its telemetry is off. They live here, not in the
//! modules they observe, so that the session store, the database, the hashing pool and the
//! credential checks carry one line of telemetry each and no metric types.

pub mod listener;
pub mod metrics;
pub mod readiness;
pub mod traces;

use std::time::Instant;

use futures_util::FutureExt;
use tracing::Instrument;

pub use readiness::Readiness;

/// Times and traces one session store operation. A combinator rather than an `async fn`:
/// an `async fn` would hold `work` twice (its argument and the awaited future), and the
/// session and database futures are large enough in debug builds for that to matter.
pub fn session_call<T, E>(
    operation: &'static str,
    work: impl Future<Output = Result<T, E>>,
) -> impl Future<Output = Result<T, E>> {
    let span = traces::span!("session", session.operation = operation);
    let started = metrics::get().map(|_| Instant::now());
    work.instrument(span).map(move |result| {
        if let (Some(m), Some(started)) = (metrics::get(), started) {
            m.session_store(operation, started.elapsed());
        }
        result
    })
}

/// Times and traces one database call (from asking for a connection to the answer).
pub fn storage_call<T, E>(work: impl Future<Output = Result<T, E>>) -> impl Future<Output = Result<T, E>> {
    let span = traces::span!("storage");
    let started = metrics::get().map(|_| Instant::now());
    work.instrument(span).map(move |result| {
        if let (Some(m), Some(started)) = (metrics::get(), started) {
            m.storage(result.is_ok(), started.elapsed());
        }
        result
    })
}

/// Records a first-factor attempt (`authelia_authn`, `authelia_authn_duration`) from its
/// outcome. Attempts that were not decided (the hashing pool busy, regulation or the
/// database unavailable) are not authentications and are not counted; their requests show
/// in `authelia_request` with their 5xx codes.
pub fn first_factor<T>(outcome: &Result<T, crate::flows::Error>, started: Instant) {
    let Some(m) = metrics::get() else { return };
    if let Some((success, banned)) = decided(outcome.as_ref().map(|_| true)) {
        m.authn(success, banned, started.elapsed());
    }
}

/// Records a second-factor attempt (`authelia_authn_second_factor`) from its outcome.
pub fn second_factor(outcome: &Result<bool, crate::flows::Error>, auth_type: crate::storage::AuthType) {
    let Some(m) = metrics::get() else { return };
    if let Some((success, banned)) = decided(outcome.as_ref().map(|matched| *matched)) {
        m.authn_second_factor(success, banned, second_factor_type(auth_type));
    }
}

/// `(success, banned)` for a decided attempt.
fn decided(outcome: Result<bool, &crate::flows::Error>) -> Option<(bool, bool)> {
    use crate::flows::Error;
    match outcome {
        Ok(matched) => Some((matched, false)),
        Err(Error::Banned { .. }) => Some((false, true)),
        Err(Error::BadCredentials) => Some((false, false)),
        Err(_) => None,
    }
}

/// Authelia's `type` label values (`totp`, `webauthn`), and ours for the methods it lacks.
fn second_factor_type(auth_type: crate::storage::AuthType) -> &'static str {
    use crate::storage::AuthType;
    match auth_type {
        AuthType::Totp => "totp",
        AuthType::WebAuthn => "webauthn",
        AuthType::Passkey => "passkey",
        AuthType::RecoveryCode => "recovery_code",
        AuthType::EmailCode => "email",
        AuthType::FirstFactor | AuthType::BasicAuth => "password",
        AuthType::UpstreamOidc => "upstream_oidc",
        AuthType::Unban => "unban",
    }
}

/// A password check waiting for a hashing slot: counted in the queue until admitted or
/// refused (or dropped, when its caller goes away).
pub struct HashingWait {
    started: Option<Instant>,
}

/// A running hash, counted until dropped (on the hashing thread, when it finishes).
pub struct HashingSlot {
    counted: bool,
}

impl HashingWait {
    /// Enters the queue.
    pub fn start() -> Self {
        let m = metrics::get();
        if let Some(m) = m {
            m.hashing_queued();
        }
        Self { started: m.map(|_| Instant::now()) }
    }

    /// Got a slot.
    pub fn admitted(mut self) -> HashingSlot {
        let counted = self.finish(true);
        HashingSlot { counted }
    }

    /// Gave up: the pool stayed busy.
    pub fn refused(mut self) {
        self.finish(false);
    }

    fn finish(&mut self, admitted: bool) -> bool {
        match (self.started.take(), metrics::get()) {
            (Some(started), Some(m)) => {
                m.hashing_dequeued(started.elapsed(), admitted);
                true
            }
            _ => false,
        }
    }
}

impl Drop for HashingWait {
    fn drop(&mut self) {
        if self.started.take().is_some()
            && let Some(m) = metrics::get()
        {
            m.hashing_abandoned();
        }
    }
}

impl Drop for HashingSlot {
    fn drop(&mut self) {
        if self.counted
            && let Some(m) = metrics::get()
        {
            m.hashing_done();
        }
    }
}

/// A reload of run-time configuration (`source`, e.g. `users_file`) succeeded or failed.
pub fn config_reload(source: &'static str, ok: bool) {
    if let Some(m) = metrics::get() {
        m.config_reload(source, ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::Error;

    #[test]
    fn only_decided_attempts_count() {
        assert_eq!(decided(Ok(true)), Some((true, false)));
        assert_eq!(decided(Ok(false)), Some((false, false)));
        assert_eq!(decided(Err(&Error::BadCredentials)), Some((false, false)));
        assert_eq!(decided(Err(&Error::Busy)), None);
    }
}
