//! `totp`, `webauthn`, `identity_validation` and `email_otp`.

use super::*;

impl Validator {
    pub(super) fn totp(&mut self, t: &Totp) {
        const ALGORITHMS: &[&str] = &["SHA1", "SHA256", "SHA512"];
        self.choice("totp.algorithm", &t.algorithm.to_ascii_uppercase(), ALGORITHMS);
        if t.digits != 6 && t.digits != 8 {
            self.err("totp.digits", format!("{} is not allowed; use 6 or 8", t.digits));
        }
        self.range("totp.period", t.period.into(), 15, 300);
        self.range("totp.skew", t.skew.into(), 0, 10);
        self.range("totp.secret_size", t.secret_size.into(), 20, 1024);
        for (i, a) in t.allowed_algorithms.iter().enumerate() {
            self.choice(&format!("totp.allowed_algorithms[{i}]"), &a.to_ascii_uppercase(), ALGORITHMS);
        }
        for (i, d) in t.allowed_digits.iter().enumerate() {
            if *d != 6 && *d != 8 {
                self.err(format!("totp.allowed_digits[{i}]"), format!("{d} is not allowed; use 6 or 8"));
            }
        }
        for (i, p) in t.allowed_periods.iter().enumerate() {
            self.range(&format!("totp.allowed_periods[{i}]"), (*p).into(), 15, 300);
        }
    }

    pub(super) fn webauthn(&mut self, w: &WebAuthn) {
        self.choice(
            "webauthn.attestation_conveyance_preference",
            &w.attestation_conveyance_preference,
            &["none", "indirect", "direct"],
        );
        self.positive("webauthn.timeout", w.timeout);
        let sc = &w.selection_criteria;
        if !sc.attachment.is_empty() {
            self.choice("webauthn.selection_criteria.attachment", &sc.attachment, &["platform", "cross-platform"]);
        }
        const LEVELS: &[&str] = &["discouraged", "preferred", "required"];
        self.choice("webauthn.selection_criteria.discoverability", &sc.discoverability, LEVELS);
        self.choice("webauthn.selection_criteria.user_verification", &sc.user_verification, LEVELS);
        if w.display_name.trim().is_empty() {
            self.err("webauthn.display_name", "must not be empty");
        }
    }

    pub(super) fn identity_validation(&mut self, iv: &IdentityValidation) {
        let rp = &iv.reset_password;
        self.choice(
            "identity_validation.reset_password.jwt_algorithm",
            &rp.jwt_algorithm,
            &["HS256", "HS384", "HS512"],
        );
        self.positive("identity_validation.reset_password.jwt_lifespan", rp.jwt_lifespan);
        let es = &iv.elevated_session;
        self.positive("identity_validation.elevated_session.code_lifespan", es.code_lifespan);
        self.positive("identity_validation.elevated_session.elevation_lifespan", es.elevation_lifespan);
        self.range("identity_validation.elevated_session.characters", es.characters.into(), 6, 20);
    }

    pub(super) fn email_otp(&mut self, e: &EmailOtp) {
        if e.enable {
            self.positive("email_otp.code_lifespan", e.code_lifespan);
            self.range("email_otp.characters", e.characters.into(), 6, 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    #[test]
    fn second_factor_options() {
        for (yaml, path) in [
            ("totp: {algorithm: md5}", "totp.algorithm"),
            ("totp: {digits: 7}", "totp.digits"),
            (
                "identity_validation: {elevated_session: {characters: 2}}",
                "identity_validation.elevated_session.characters",
            ),
            ("email_otp: {enable: true, characters: 2}", "email_otp.characters"),
        ] {
            assert!(problem_paths(yaml).contains(&path.to_string()), "{yaml}: {:?}", problem_paths(yaml));
        }
    }
}
