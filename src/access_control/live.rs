//! The rules in force, swappable while requests run.
//!
//! A reload compiles a whole new [`AccessControl`] first and then replaces the running one
//! in a single atomic store: a request sees the old rules or the new ones, never a mix, and
//! never waits for the swap. `arc-swap` is used rather than a `RwLock<Arc<_>>` because the
//! reader side is one atomic load with no shared counter to bounce between cores, which is
//! what the authorization hot path needs (decision 0023).

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::AccessControl;

/// The compiled rules currently in force.
pub struct LiveRules {
    current: ArcSwap<AccessControl>,
}

impl LiveRules {
    /// Starts with `rules`.
    pub fn new(rules: AccessControl) -> Self {
        Self { current: ArcSwap::from_pointee(rules) }
    }

    /// The rules in force now; hold the guard for one request, not longer (it keeps that
    /// version alive).
    pub fn current(&self) -> Guard<Arc<AccessControl>> {
        self.current.load()
    }

    /// Puts `rules` in force for every request that starts from now on.
    pub fn replace(&self, rules: AccessControl) {
        self.current.store(Arc::new(rules));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_control::{Object, Policy, Subject};
    use crate::config::Configuration;

    fn compiled(default_policy: &str) -> AccessControl {
        let yaml = format!("access_control:\n  default_policy: {default_policy}\n");
        let config: Configuration = serde_yaml::from_str(&yaml).unwrap();
        AccessControl::compile(&config).unwrap()
    }

    #[test]
    fn a_replacement_applies_to_later_reads_and_spares_earlier_ones() {
        let live = LiveRules::new(compiled("deny"));
        let object = Object::from_parts("app.example.com", "/", None, "GET");
        let before = live.current();
        live.replace(compiled("bypass"));
        assert_eq!(
            before.evaluate(&Subject::default(), &object).policy,
            Policy::Deny,
            "a running request keeps its rules"
        );
        assert_eq!(live.current().evaluate(&Subject::default(), &object).policy, Policy::Bypass);
    }
}
