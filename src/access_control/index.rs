//! Which rules can match a host. Exact domains and suffixes (`*.x`, `{user}.x`, `{group}.x`)
//! are indexed; rules with a `domain_regex` (or no domain at all) are always candidates.
//! Candidates come out in rule order, so "first match wins" is preserved.

use std::collections::HashMap;

use super::matchers::DomainMatcher;

/// Rule indices by domain key.
#[derive(Debug, Default)]
pub struct DomainIndex {
    exact: HashMap<String, Vec<usize>>,
    suffix: HashMap<String, Vec<usize>>,
    /// Suffixes that do not start at a label boundary (`{user}-x.example.com`): rare,
    /// checked one by one.
    loose: Vec<(String, usize)>,
    always: Vec<usize>,
}

impl DomainIndex {
    /// Indexes rules given by their domain matchers, in order.
    pub fn build<'a>(rules: impl Iterator<Item = &'a [DomainMatcher]>) -> Self {
        let mut index = Self::default();
        for (i, domains) in rules.enumerate() {
            let unindexable = domains.is_empty()
                || domains.iter().any(|d| matches!(d, DomainMatcher::Regex(_)))
                || domains.iter().any(|d| matches!(d, DomainMatcher::Wildcard(s) if s.is_empty()));
            if unindexable {
                index.always.push(i);
                continue;
            }
            for d in domains {
                let (map, key) = match d {
                    DomainMatcher::Exact(name) => (&mut index.exact, name),
                    DomainMatcher::Wildcard(suffix) | DomainMatcher::User(suffix) | DomainMatcher::Group(suffix) => {
                        if !suffix.starts_with('.') {
                            index.loose.push((suffix.clone(), i));
                            continue;
                        }
                        (&mut index.suffix, suffix)
                    }
                    DomainMatcher::Regex(_) => continue,
                };
                let list = map.entry(key.clone()).or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        index
    }

    /// Indices of the rules that may match `domain` (lower case), ascending.
    pub fn candidates(&self, domain: &str) -> Vec<usize> {
        let mut out: Vec<usize> = self.always.clone();
        if let Some(list) = self.exact.get(domain) {
            out.extend_from_slice(list);
        }
        for (i, b) in domain.bytes().enumerate() {
            if b == b'.'
                && let Some(list) = self.suffix.get(&domain[i..])
            {
                out.extend_from_slice(list);
            }
        }
        out.extend(self.loose.iter().filter(|(suffix, _)| domain.ends_with(suffix.as_str())).map(|(_, i)| *i));
        out.sort_unstable();
        out.dedup();
        out
    }
}
