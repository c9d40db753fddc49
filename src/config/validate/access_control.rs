//! `definitions.network` and `access_control`: rules, their domains, subjects, networks, methods, query conditions and regexes.

use super::*;

impl Validator {
    /// Checks named networks and returns the set of names rules may use.
    pub(super) fn network_definitions(&mut self, c: &Configuration) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (name, entries) in &c.definitions.network {
            for (i, entry) in entries.as_slice().iter().enumerate() {
                if parse_network(entry).is_none() {
                    self.err(
                        format!("definitions.network.{name}[{i}]"),
                        format!("'{entry}' is not an IP address or CIDR"),
                    );
                }
            }
            names.insert(name.clone());
        }
        for (i, net) in c.access_control.networks.iter().enumerate() {
            let path = format!("access_control.networks[{i}]");
            match net.name.as_deref() {
                None | Some("") => self.err(format!("{path}.name"), "required"),
                Some(name) => {
                    if !names.insert(name.to_string()) {
                        self.err(format!("{path}.name"), format!("network '{name}' is defined twice"));
                    }
                }
            }
            if net.networks.is_empty() {
                self.err(format!("{path}.networks"), "at least one IP address or CIDR is required");
            }
            for (j, entry) in net.networks.as_slice().iter().enumerate() {
                if parse_network(entry).is_none() {
                    self.err(format!("{path}.networks[{j}]"), format!("'{entry}' is not an IP address or CIDR"));
                }
            }
        }
        names
    }

    pub(super) fn access_control(&mut self, ac: &AccessControl, networks: &BTreeSet<String>) {
        for (i, rule) in ac.rules.iter().enumerate() {
            self.rule(&format!("access_control.rules[{i}]"), rule, networks);
        }
    }

    pub(super) fn rule(&mut self, path: &str, r: &AccessRule, networks: &BTreeSet<String>) {
        if r.policy.is_none() {
            self.err(format!("{path}.policy"), "required; use one of 'bypass', 'one_factor', 'two_factor', 'deny'");
        }
        if r.domain.is_empty() && r.domain_regex.is_empty() {
            self.err(path, "a rule needs 'domain' or 'domain_regex'");
        }
        for (i, d) in r.domain.as_slice().iter().enumerate() {
            if let Some(message) = rule_domain_problem(d) {
                self.err(format!("{path}.domain[{i}]"), message);
            }
        }
        for (i, re) in r.domain_regex.as_slice().iter().enumerate() {
            self.regex(&format!("{path}.domain_regex[{i}]"), re);
        }
        for (i, re) in r.resources.as_slice().iter().enumerate() {
            self.regex(&format!("{path}.resources[{i}]"), re);
        }
        for (i, m) in r.methods.as_slice().iter().enumerate() {
            if !HTTP_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                self.err(format!("{path}.methods[{i}]"), format!("'{m}' is not an HTTP method"));
            }
        }
        for (i, n) in r.networks.as_slice().iter().enumerate() {
            if parse_network(n).is_none() && !networks.contains(n) {
                self.err(
                    format!("{path}.networks[{i}]"),
                    format!("'{n}' is neither an IP address, a CIDR nor a defined network name"),
                );
            }
        }
        let has_subject = r.subject.as_slice().iter().any(|inner| !inner.is_empty());
        if has_subject && r.policy == Some(Policy::Bypass) {
            self.err(
                format!("{path}.subject"),
                "a bypass rule cannot have subjects (bypass never knows who the user is)",
            );
        }
        for (i, inner) in r.subject.as_slice().iter().enumerate() {
            for (j, s) in inner.as_slice().iter().enumerate() {
                let rest = s
                    .strip_prefix("user:")
                    .or_else(|| s.strip_prefix("group:"))
                    .or_else(|| s.strip_prefix("oauth2:client:"))
                    .or_else(|| s.strip_prefix("token:"));
                if rest.is_none_or(str::is_empty) {
                    self.err(
                        format!("{path}.subject[{i}][{j}]"),
                        format!(
                            "'{s}' must be 'user:<name>', 'group:<name>', 'oauth2:client:<id>', 'token:any' or \
                             'token:<name>'"
                        ),
                    );
                }
            }
        }
        for (i, group) in r.query.iter().enumerate() {
            for (j, q) in group.iter().enumerate() {
                self.query_condition(&format!("{path}.query[{i}][{j}]"), q);
            }
        }
    }

    pub(super) fn query_condition(&mut self, path: &str, q: &QueryCondition) {
        if q.key.as_deref().is_none_or(str::is_empty) {
            self.err(format!("{path}.key"), "required");
        }
        let operator =
            q.operator.clone().unwrap_or_else(|| if q.value.is_some() { "equal" } else { "present" }.to_string());
        if !one_of(&operator, QUERY_OPERATORS) {
            self.choice(&format!("{path}.operator"), &operator, QUERY_OPERATORS);
            return;
        }
        let needs_value = !matches!(operator.as_str(), "present" | "absent");
        match (&q.value, needs_value) {
            (None, true) => self.err(format!("{path}.value"), format!("required for operator '{operator}'")),
            (Some(_), false) => self.err(format!("{path}.value"), format!("not allowed for operator '{operator}'")),
            (Some(value), true) => {
                let text = match value {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                };
                match text {
                    None => self.err(format!("{path}.value"), "must be a string, number or boolean"),
                    Some(t) if operator.ends_with("pattern") => self.regex(&format!("{path}.value"), &t),
                    Some(_) => {}
                }
            }
            (None, false) => {}
        }
    }

    pub(super) fn regex(&mut self, path: &str, pattern: &str) {
        if let Err(e) = regex::Regex::new(pattern) {
            let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
            self.err(path, format!("invalid regular expression '{pattern}': {first}"));
        }
    }
}

const HTTP_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];
const QUERY_OPERATORS: &[&str] = &["equal", "not equal", "present", "absent", "pattern", "not pattern"];

fn rule_domain_problem(domain: &str) -> Option<String> {
    let d = domain.to_ascii_lowercase();
    let rest = d.strip_prefix("*.").unwrap_or(&d);
    let without_placeholders = rest.replace("{user}", "x").replace("{group}", "x");
    if d == "*" {
        return None;
    }
    if without_placeholders.contains('*') {
        return Some(format!("'{domain}': a wildcard is only allowed as the first label ('*.example.com')"));
    }
    if !without_placeholders.split('.').all(valid_label) {
        return Some(format!("'{domain}' is not a valid domain name"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;

    #[test]
    fn rule_domains() {
        for good in ["example.com", "*.example.com", "{user}.example.com", "*", "App.Example.com"] {
            assert!(rule_domain_problem(good).is_none(), "{good}");
        }
        for bad in ["a.*.example.com", "exa mple.com", "", "a..b"] {
            assert!(rule_domain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn rules() {
        let rule = |r: &str| problem_paths(&format!("access_control:\n  rules:\n    - {r}\n"));
        for (r, path) in [
            ("{domain: a.example.com}", "access_control.rules[0].policy"),
            ("{policy: bypass}", "access_control.rules[0]"),
            ("{domain: a.example.com, policy: bypass, subject: 'user:john'}", "access_control.rules[0].subject"),
            ("{domain: a.example.com, policy: deny, methods: [FETCH]}", "access_control.rules[0].methods[0]"),
            ("{domain: a.example.com, policy: deny, networks: [nowhere]}", "access_control.rules[0].networks[0]"),
            ("{domain: a.example.com, policy: deny, resources: ['^(']}", "access_control.rules[0].resources[0]"),
        ] {
            assert!(rule(r).contains(&path.to_string()), "{r}: {:?}", rule(r));
        }
        assert!(!rule("{domain: a.example.com, policy: one_factor}").iter().any(|p| p.starts_with("access_control")));
    }
}
