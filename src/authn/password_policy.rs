//! Rules a new password must meet (`password_policy`): length and character classes
//! (`standard`) or an estimated strength (`zxcvbn`). The same rules are published at
//! `/api/configuration/password-policy` so the portal can guide the user as they type;
//! the server checks again, as the client cannot be trusted.

use crate::config::schema::PasswordPolicy;

/// Longest password accepted whatever the policy, so that hashing cost stays bounded.
pub const ABSOLUTE_MAX_CHARS: usize = 1024;

/// Why a password was refused, in words for the user.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);

/// Checks `password` against `policy`. `context` (username, display name, emails) counts
/// against the zxcvbn score: a password made of the user's own name is weak.
pub fn check(policy: &PasswordPolicy, password: &str, context: &[&str]) -> Result<(), PolicyViolation> {
    let chars = password.chars().count();
    let refuse = |why: String| Err(PolicyViolation(why));
    if chars == 0 {
        return refuse("The password must not be empty.".into());
    }
    if chars > ABSOLUTE_MAX_CHARS {
        return refuse(format!("The password must be at most {ABSOLUTE_MAX_CHARS} characters long."));
    }
    if policy.standard.enabled {
        let s = &policy.standard;
        if chars < s.min_length as usize {
            return refuse(format!("The password must be at least {} characters long.", s.min_length));
        }
        if s.max_length > 0 && chars > s.max_length as usize {
            return refuse(format!("The password must be at most {} characters long.", s.max_length));
        }
        let mut missing = Vec::new();
        if s.require_uppercase && !password.chars().any(char::is_uppercase) {
            missing.push("an upper-case letter");
        }
        if s.require_lowercase && !password.chars().any(char::is_lowercase) {
            missing.push("a lower-case letter");
        }
        if s.require_number && !password.chars().any(|c| c.is_numeric()) {
            missing.push("a number");
        }
        if s.require_special && !password.chars().any(|c| !c.is_alphanumeric()) {
            missing.push("a special character");
        }
        if !missing.is_empty() {
            return refuse(format!("The password must contain {}.", missing.join(", ")));
        }
    } else if policy.zxcvbn.enabled {
        let score = u32::from(u8::from(zxcvbn::zxcvbn(password, context).score()));
        if score < policy.zxcvbn.min_score {
            return refuse(format!(
                "The password is too easy to guess (strength {score} of 4, at least {} required). \
                 Use a longer passphrase of unrelated words.",
                policy.zxcvbn.min_score
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::{StandardPasswordPolicy, ZxcvbnPasswordPolicy};

    fn standard() -> PasswordPolicy {
        PasswordPolicy {
            standard: StandardPasswordPolicy {
                enabled: true,
                min_length: 10,
                max_length: 20,
                require_uppercase: true,
                require_lowercase: true,
                require_number: true,
                require_special: true,
            },
            ..Default::default()
        }
    }

    #[test]
    fn standard_policy() {
        let p = standard();
        assert!(check(&p, "Short1!", &[]).unwrap_err().0.contains("at least 10"));
        assert!(check(&p, "Waytoolongpassword1!xx", &[]).unwrap_err().0.contains("at most 20"));
        let e = check(&p, "alllowercase", &[]).unwrap_err().0;
        assert!(e.contains("upper-case") && e.contains("number") && e.contains("special") && !e.contains("lower-case"));
        assert_eq!(check(&p, "Correct-Horse1", &[]), Ok(()));
    }

    #[test]
    fn zxcvbn_policy_and_context() {
        let p = PasswordPolicy { zxcvbn: ZxcvbnPasswordPolicy { enabled: true, min_score: 3 }, ..Default::default() };
        assert!(check(&p, "password1", &[]).is_err());
        assert!(check(&p, "johnsmith1990", &["johnsmith", "John Smith"]).is_err());
        assert_eq!(check(&p, "violet-tractor-cumulus-banjo", &[]), Ok(()));
    }

    #[test]
    fn disabled_policy_still_bounds() {
        let p = PasswordPolicy::default();
        assert!(check(&p, "", &[]).is_err());
        assert!(check(&p, &"x".repeat(ABSOLUTE_MAX_CHARS + 1), &[]).is_err());
        assert_eq!(check(&p, "x", &[]), Ok(()));
    }
}
