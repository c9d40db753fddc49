//! Time-based one-time passwords (RFC 6238): offering a new secret within the operator's
//! allowed parameters, the otpauth:// URL and QR code for authenticator apps, and checking
//! a code against a stored setup. Replay protection lives in storage (a used time step is
//! recorded under a unique index), so a code works once even across several servers.

use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use totp_rs::{Algorithm, Builder, Secret};

use crate::config::schema::Totp as TotpConfig;
use crate::session::PendingTotp;
use crate::storage::TotpRecord;

/// Why a TOTP request cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    /// The requested parameter is not among those the operator allows.
    #[error("{0} is not allowed")]
    NotAllowed(&'static str),
    /// The stored or offered setup cannot be used (bad secret, name too long, ...).
    #[error("invalid TOTP setup: {0}")]
    Invalid(String),
}

/// What users may choose when setting up TOTP (Authelia's `TOTPOptions`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct TotpOptions {
    /// Default algorithm.
    pub algorithm: String,
    /// Allowed algorithms.
    pub algorithms: Vec<String>,
    /// Default number of digits.
    pub length: u32,
    /// Allowed numbers of digits.
    pub lengths: Vec<u32>,
    /// Default period.
    pub period: u32,
    /// Allowed periods.
    pub periods: Vec<u32>,
}

/// TOTP as the operator configured it.
#[derive(Clone, Debug)]
pub struct TotpService {
    config: TotpConfig,
}

impl TotpService {
    /// The service for `config` (already validated).
    pub fn new(config: &TotpConfig) -> Self {
        let mut config = config.clone();
        config.algorithm = config.algorithm.to_ascii_uppercase();
        for a in &mut config.allowed_algorithms {
            *a = a.to_ascii_uppercase();
        }
        // The default is always allowed, whatever the lists say.
        if !config.allowed_algorithms.contains(&config.algorithm) {
            config.allowed_algorithms.insert(0, config.algorithm.clone());
        }
        if !config.allowed_digits.contains(&config.digits) {
            config.allowed_digits.insert(0, config.digits);
        }
        if !config.allowed_periods.contains(&config.period) {
            config.allowed_periods.insert(0, config.period);
        }
        Self { config }
    }

    /// Whether TOTP is turned off.
    pub fn disabled(&self) -> bool {
        self.config.disable
    }

    /// The choices offered to users.
    pub fn options(&self) -> TotpOptions {
        TotpOptions {
            algorithm: self.config.algorithm.clone(),
            algorithms: self.config.allowed_algorithms.clone(),
            length: self.config.digits,
            lengths: self.config.allowed_digits.clone(),
            period: self.config.period,
            periods: self.config.allowed_periods.clone(),
        }
    }

    /// A fresh random secret with the requested parameters (defaults when `None`).
    pub fn offer(
        &self,
        algorithm: Option<&str>,
        digits: Option<u32>,
        period: Option<u32>,
        now: i64,
    ) -> Result<PendingTotp, TotpError> {
        let algorithm =
            algorithm.filter(|a| !a.is_empty()).map_or(self.config.algorithm.clone(), str::to_ascii_uppercase);
        let digits = digits.filter(|d| *d != 0).unwrap_or(self.config.digits);
        let period = period.filter(|p| *p != 0).unwrap_or(self.config.period);
        if !self.config.allowed_algorithms.contains(&algorithm) {
            return Err(TotpError::NotAllowed("algorithm"));
        }
        if !self.config.allowed_digits.contains(&digits) {
            return Err(TotpError::NotAllowed("length"));
        }
        if !self.config.allowed_periods.contains(&period) {
            return Err(TotpError::NotAllowed("period"));
        }
        let mut secret = vec![0u8; self.config.secret_size.max(20) as usize];
        rand::rng().fill_bytes(&mut secret);
        Ok(PendingTotp { secret: Secret::from(secret).to_base32(), algorithm, digits, period, created_at: now })
    }

    /// The `otpauth://` URL and a PNG QR code (as a `data:` URI) for `pending`.
    pub fn enrollment_links(&self, pending: &PendingTotp, account: &str) -> Result<(String, String), TotpError> {
        let secret = Secret::try_from_base32(&pending.secret).map_err(|e| TotpError::Invalid(e.to_string()))?;
        let totp = build(
            &pending.algorithm,
            pending.digits,
            pending.period,
            0,
            secret.as_ref(),
            Some((&self.config.issuer, account)),
        )?;
        let url = totp.to_url().map_err(|e| TotpError::Invalid(e.to_string()))?;
        let png = totp.to_qr_png().map_err(|e| TotpError::Invalid(e.to_string()))?;
        let qr = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
        Ok((url, qr))
    }

    /// The stored setup a confirmed `pending` secret becomes.
    pub fn confirm(&self, pending: &PendingTotp, username: &str, now: i64) -> Result<TotpRecord, TotpError> {
        let secret = Secret::try_from_base32(&pending.secret).map_err(|e| TotpError::Invalid(e.to_string()))?;
        Ok(TotpRecord {
            username: username.to_string(),
            created_at: now,
            last_used_at: None,
            issuer: self.config.issuer.clone(),
            algorithm: pending.algorithm.clone(),
            digits: pending.digits,
            period: pending.period,
            secret: secret.as_ref().to_vec(),
        })
    }

    /// The time step `code` belongs to, if it is valid for `record` at `now` (within the
    /// configured skew). The caller must record the step to stop replays.
    pub fn matching_step(&self, record: &TotpRecord, code: &str, now: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != record.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp =
            build(&record.algorithm, record.digits, record.period, self.config.skew, &record.secret, None).ok()?;
        let step = totp.check(code, u64::try_from(now).ok()?)?;
        i64::try_from(step).ok()
    }

    /// Whether a code may be accepted twice within its period (operator opt-out).
    pub fn reuse_allowed(&self) -> bool {
        self.config.disable_reuse_security_policy
    }

    /// The code for `record` at `now` (tests and tooling).
    pub fn code_at(record: &TotpRecord, now: i64) -> Option<String> {
        let totp = build(&record.algorithm, record.digits, record.period, 0, &record.secret, None).ok()?;
        Some(totp.generate(u64::try_from(now).ok()?).to_string())
    }
}

fn build(
    algorithm: &str,
    digits: u32,
    period: u32,
    skew: u32,
    secret: &[u8],
    label: Option<(&str, &str)>,
) -> Result<totp_rs::Totp, TotpError> {
    let algorithm = match algorithm {
        "SHA1" => Algorithm::SHA1,
        "SHA256" => Algorithm::SHA256,
        "SHA512" => Algorithm::SHA512,
        other => return Err(TotpError::Invalid(format!("unknown algorithm '{other}'"))),
    };
    let mut builder = Builder::new()
        .with_algorithm(algorithm)
        .with_digits(u8::try_from(digits).map_err(|_| TotpError::Invalid("digits".into()))?)
        .with_step_duration(u64::from(period))
        .with_skew(u16::try_from(skew).unwrap_or(1))
        .with_secret(secret.to_vec());
    if let Some((issuer, account)) = label {
        // ':' separates issuer and account in the label; authenticator apps cannot show it.
        builder = builder.with_issuer(Some(issuer.replace(':', " "))).with_account_name(account.replace(':', " "));
    }
    builder.build().map_err(|e| TotpError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service() -> TotpService {
        TotpService::new(&TotpConfig {
            allowed_digits: vec![6, 8],
            allowed_algorithms: vec!["sha1".into(), "SHA256".into()],
            ..Default::default()
        })
    }

    #[test]
    fn offers_only_allowed_parameters() {
        let s = service();
        let p = s.offer(Some("sha256"), Some(8), None, 100).unwrap();
        assert_eq!((p.algorithm.as_str(), p.digits, p.period), ("SHA256", 8, 30));
        assert_eq!(Secret::try_from_base32(&p.secret).unwrap().as_ref().len(), 32);
        assert_eq!(s.offer(Some("SHA512"), None, None, 0), Err(TotpError::NotAllowed("algorithm")));
        assert_eq!(s.offer(None, Some(7), None, 0), Err(TotpError::NotAllowed("length")));
        assert_eq!(s.offer(None, None, Some(60), 0), Err(TotpError::NotAllowed("period")));
        assert_ne!(s.offer(None, None, None, 0).unwrap().secret, s.offer(None, None, None, 0).unwrap().secret);
    }

    #[test]
    fn codes_match_within_skew_only() {
        let s = service();
        let pending = s.offer(None, None, None, 0).unwrap();
        let record = s.confirm(&pending, "john", 0).unwrap();
        let now = 1_700_000_000;
        let code = TotpService::code_at(&record, now).unwrap();
        assert_eq!(s.matching_step(&record, &code, now), Some(now / 30));
        assert_eq!(s.matching_step(&record, &code, now + 30), Some(now / 30), "one step of skew");
        assert_eq!(s.matching_step(&record, &code, now + 90), None);
        assert_eq!(s.matching_step(&record, "12345", now), None);
        assert_eq!(s.matching_step(&record, "abcdef", now), None);
    }

    #[test]
    fn rfc6238_vector() {
        // RFC 6238 appendix B, SHA1, 8 digits, T = 59.
        let record = TotpRecord {
            username: "u".into(),
            created_at: 0,
            last_used_at: None,
            issuer: "x".into(),
            algorithm: "SHA1".into(),
            digits: 8,
            period: 30,
            secret: b"12345678901234567890".to_vec(),
        };
        assert_eq!(TotpService::code_at(&record, 59).unwrap(), "94287082");
    }

    #[test]
    fn enrollment_links() {
        let s = service();
        let pending = s.offer(None, None, None, 0).unwrap();
        let (url, qr) = s.enrollment_links(&pending, "john").unwrap();
        assert!(url.starts_with("otpauth://totp/Portcullis:john?"), "{url}");
        assert!(url.contains(&format!("secret={}", pending.secret)));
        assert!(qr.starts_with("data:image/png;base64,iVBOR"));
    }
}
