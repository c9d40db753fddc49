//! `api_tokens`: a cap per user that is a real bound, and a cache lifespan short enough
//! that a token revoked on another instance stops working soon.

use super::*;

/// Longest `api_tokens.cache_lifespan`: revocation seen elsewhere must not wait longer.
const MAX_CACHE_LIFESPAN: std::time::Duration = std::time::Duration::from_secs(300);

impl Validator {
    pub(super) fn api_tokens(&mut self, t: &ApiTokens) {
        self.range("api_tokens.max_per_user", u64::from(t.max_per_user), 1, 1000);
        if t.cache_lifespan.get() > MAX_CACHE_LIFESPAN {
            self.err(
                "api_tokens.cache_lifespan",
                "must be at most 5m: a token revoked on another instance would stay usable that long",
            );
        }
        if !t.max_lifespan.is_zero() && t.max_lifespan.get() < std::time::Duration::from_secs(60) {
            self.err("api_tokens.max_lifespan", "must be at least 1m (or 0 for no limit)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    #[test]
    fn bounds_are_reported_with_their_paths() {
        assert!(!problem_paths("api_tokens: {enabled: true}").iter().any(|p| p.starts_with("api_tokens")));
        let bad = "api_tokens: {enabled: true, max_per_user: 0, cache_lifespan: 1h, max_lifespan: 10s}";
        let paths = problem_paths(bad);
        for key in ["api_tokens.max_per_user", "api_tokens.cache_lifespan", "api_tokens.max_lifespan"] {
            assert!(paths.contains(&key.to_string()), "{key}: {paths:?}");
        }
    }
}
