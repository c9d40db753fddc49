//! The access-control engine: Authelia's `access_control` semantics, compiled once.
//!
//! Pure: no I/O, no clocks. Rules are checked in order and the first whose criteria all
//! match decides; otherwise `default_policy` applies. An anonymous subject matches any rule
//! that *could* match once the user is known (subjects, `{user}`/`{group}` domains, regex
//! groups), and such a decision carries `has_subjects` so the caller asks for a login
//! instead of allowing or denying. Rules are indexed by domain so that a request only
//! examines the rules that can match its host: ten thousand rules cost about what ten do.
//!
//! A path is judged as every server may read it ([`path::readings`]) and the strictest
//! decision applies; spellings whose readings reach different resources are refused
//! before that ([`AccessControl::object`], see [`path`]).

mod index;
mod live;
mod matchers;
pub mod path;

pub use live::LiveRules;

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use self::index::DomainIndex;
use self::matchers::{DomainMatcher, QueryMatcher, SubjectAtom, SubjectRegex, networks_match};
use crate::config::Configuration;
use crate::config::validate::parse_network;

/// What a rule (or the default) requires; parsed from the configuration once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// No authentication needed.
    Bypass,
    /// A password (or another single factor).
    OneFactor,
    /// Two factors.
    TwoFactor,
    /// Nobody.
    Deny,
}

impl Policy {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bypass => "bypass",
            Self::OneFactor => "one_factor",
            Self::TwoFactor => "two_factor",
            Self::Deny => "deny",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking. Anonymous when both `username` and `client_id` are empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Subject<'a> {
    /// Login name.
    pub username: &'a str,
    /// Group memberships.
    pub groups: &'a [String],
    /// OAuth 2.0 client, for `oauth2:client:` subjects.
    pub client_id: &'a str,
    /// Client address, for `networks`.
    pub ip: Option<IpAddr>,
    /// The name of the personal API token the request came with, for `token:` subjects
    /// (`None`: not a token).
    pub token: Option<&'a str>,
}

impl Subject<'_> {
    /// True when nobody is logged in.
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty() && self.client_id.is_empty()
    }
}

/// What is being asked for: the target's domain, normalized path, query and method.
#[derive(Clone, Debug)]
pub struct Object {
    /// Host, lower case, without port.
    pub domain: String,
    /// The usual reading of the path, with `?query` (see [`path::normalize`]).
    pub path: String,
    /// The path's other readings where they differ from `path`, each with `?query` (see
    /// [`path::readings`]): the strictest decision over all of them applies.
    pub other_readings: Vec<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// HTTP method, upper case.
    pub method: Cow<'static, str>,
}

/// `method` in upper case. The methods HTTP defines come back as constants: judging a
/// request then allocates nothing for its method.
pub fn upper_case_method(method: &str) -> Cow<'static, str> {
    const DEFINED: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    match DEFINED.iter().find(|defined| defined.eq_ignore_ascii_case(method)) {
        Some(defined) => Cow::Borrowed(*defined),
        None => Cow::Owned(method.to_ascii_uppercase()),
    }
}

impl Object {
    /// An object for `url` and `method`.
    pub fn new(url: &url::Url, method: &str) -> Self {
        Self::from_parts(url.host_str().unwrap_or_default(), url.path(), url.query(), method)
    }

    /// An object from its parts; `host` may carry a port and any case.
    pub fn from_parts(host: &str, path: &str, query: Option<&str>, method: &str) -> Self {
        let host = match host.rsplit_once(':') {
            Some((h, port)) if !h.ends_with(']') && !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let domain = host.trim_end_matches('.').to_ascii_lowercase();
        let query_pairs = query
            .map(|q| url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect())
            .unwrap_or_default();
        let (usual, other_readings) = match path::only_reading(path) {
            // The usual path: no list of readings to build.
            Some(reading) => (path::with_query(reading, query), Vec::new()),
            None => {
                let mut readings = path::all_readings(path).into_iter().map(|p| path::with_query(p, query));
                let usual = readings.next().unwrap_or_else(|| path::normalize(path, query));
                (usual, readings.collect())
            }
        };
        Self { domain, path: usual, other_readings, query: query_pairs, method: upper_case_method(method) }
    }

    fn query_first(&self, key: &str) -> &str {
        self.query.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    fn query_has(&self, key: &str) -> bool {
        self.query.iter().any(|(k, _)| k == key)
    }
}

/// The outcome of evaluating a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The required policy.
    pub policy: Policy,
    /// 1-based index of the deciding rule; `None` when the default policy applied.
    pub rule: Option<usize>,
    /// The deciding rule depends on who the user is: an anonymous request must log in.
    pub has_subjects: bool,
}

/// How one rule fared against a request (for `check-policy`'s table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleReport {
    /// 1-based position.
    pub position: usize,
    /// The rule's policy.
    pub policy: Policy,
    /// Criteria results.
    pub domain: bool,
    /// `resources`.
    pub resources: bool,
    /// `query`.
    pub query: bool,
    /// `methods`.
    pub methods: bool,
    /// `networks`.
    pub networks: bool,
    /// `subject` (an anonymous subject counts as a possible match).
    pub subjects: bool,
    /// `subject`, requiring a real match.
    pub subjects_exact: bool,
    /// This rule decided.
    pub decided: bool,
}

#[derive(Debug)]
struct Rule {
    domains: Vec<DomainMatcher>,
    resources: Vec<SubjectRegex>,
    query: Vec<Vec<QueryMatcher>>,
    methods: Vec<String>,
    networks: Vec<IpNet>,
    subjects: Vec<Vec<SubjectAtom>>,
    policy: Policy,
    has_subjects: bool,
}

impl Rule {
    fn domain(&self, s: &Subject<'_>, o: &Object) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d.is_match(&o.domain, s))
    }
    fn resources(&self, s: &Subject<'_>, path: &str) -> bool {
        self.resources.is_empty() || self.resources.iter().any(|r| r.is_match(path, s))
    }
    fn query(&self, o: &Object) -> bool {
        self.query.is_empty() || self.query.iter().any(|all| all.iter().all(|q| q.is_match(o)))
    }
    fn methods(&self, o: &Object) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| *m == o.method)
    }
    fn networks(&self, s: &Subject<'_>) -> bool {
        networks_match(&self.networks, s.ip)
    }
    fn subjects_exact(&self, s: &Subject<'_>) -> bool {
        if self.subjects.is_empty() {
            return true;
        }
        !s.is_anonymous() && self.subjects.iter().any(|all| all.iter().all(|a| a.is_match(s)))
    }
    fn subjects(&self, s: &Subject<'_>) -> bool {
        s.is_anonymous() || self.subjects_exact(s)
    }
    fn is_match(&self, s: &Subject<'_>, o: &Object, path: &str) -> bool {
        self.domain(s, o)
            && self.resources(s, path)
            && self.query(o)
            && self.methods(o)
            && self.networks(s)
            && self.subjects(s)
    }
}

/// The compiled access-control rules.
#[derive(Debug)]
pub struct AccessControl {
    rules: Vec<Rule>,
    default_policy: Policy,
    index: DomainIndex,
    allow_encoded_slashes: bool,
    second_factor_required: bool,
}

impl AccessControl {
    /// Compiles `config.access_control` (expects a validated configuration).
    pub fn compile(config: &Configuration) -> Result<Self, String> {
        let ac = &config.access_control;
        let mut named: std::collections::HashMap<&str, Vec<IpNet>> = std::collections::HashMap::new();
        for (name, list) in &config.definitions.network {
            named.insert(name, list.as_slice().iter().filter_map(|n| parse_network(n)).collect());
        }
        for net in &ac.networks {
            if let Some(name) = &net.name {
                named.insert(name, net.networks.as_slice().iter().filter_map(|n| parse_network(n)).collect());
            }
        }
        let mut rules = Vec::with_capacity(ac.rules.len());
        for (i, r) in ac.rules.iter().enumerate() {
            let at = |what: &str, e: &dyn fmt::Display| format!("access_control.rules[{i}].{what}: {e}");
            let mut domains: Vec<DomainMatcher> = r.domain.as_slice().iter().map(|d| DomainMatcher::parse(d)).collect();
            for re in r.domain_regex.as_slice() {
                domains.push(DomainMatcher::Regex(SubjectRegex::new(re).map_err(|e| at("domain_regex", &e))?));
            }
            let resources = r
                .resources
                .as_slice()
                .iter()
                .map(|re| SubjectRegex::new(re).map_err(|e| at("resources", &e)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut query = Vec::new();
            for group in &r.query {
                let mut all = Vec::new();
                for q in group {
                    all.push(compile_query(q).map_err(|e| at("query", &e))?);
                }
                query.push(all);
            }
            let mut networks = Vec::new();
            for n in r.networks.as_slice() {
                match parse_network(n) {
                    Some(net) => networks.push(net),
                    None => networks.extend(named.get(n.as_str()).ok_or_else(|| at("networks", &n))?.iter().copied()),
                }
            }
            let subjects: Vec<Vec<SubjectAtom>> = r
                .subject
                .as_slice()
                .iter()
                .map(|all| all.as_slice().iter().filter_map(|s| SubjectAtom::parse(s)).collect::<Vec<_>>())
                .filter(|all| !all.is_empty())
                .collect();
            let has_subjects = !subjects.is_empty()
                || domains.iter().any(DomainMatcher::names_subject)
                || resources.iter().any(SubjectRegex::names_subject);
            rules.push(Rule {
                domains,
                resources,
                query,
                methods: r.methods.as_slice().iter().map(|m| m.to_ascii_uppercase()).collect(),
                networks,
                subjects,
                policy: r.policy.unwrap_or(Policy::Deny),
                has_subjects,
            });
        }
        let index = DomainIndex::build(rules.iter().map(|r| r.domains.as_slice()));
        Ok(Self {
            rules,
            default_policy: ac.default_policy.unwrap_or(Policy::Deny),
            index,
            allow_encoded_slashes: ac.allow_encoded_slashes,
            second_factor_required: ac.second_factor_required(),
        })
    }

    /// The object for a request to `host` whose path is `raw_path` exactly as the client
    /// sent it, or why that path is refused rather than judged (see [`path::ambiguity`];
    /// `access_control.allow_encoded_slashes` decides about `%2F`).
    pub fn object(
        &self,
        host: &str,
        raw_path: &str,
        query: Option<&str>,
        method: &str,
    ) -> Result<Object, &'static str> {
        match path::ambiguity(raw_path, self.allow_encoded_slashes) {
            Some(why) => Err(why),
            None => Ok(Object::from_parts(host, raw_path, query, method)),
        }
    }

    /// The policy that applies to `object` for `subject`: the strictest over the readings
    /// of its path.
    pub fn evaluate(&self, subject: &Subject<'_>, object: &Object) -> Decision {
        self.decide(subject, object).0
    }

    /// The decision and the reading of the path that led to it.
    fn decide<'o>(&self, subject: &Subject<'_>, object: &'o Object) -> (Decision, &'o str) {
        let mut strictest = (self.evaluate_path(subject, object, &object.path), object.path.as_str());
        for reading in &object.other_readings {
            let decision = self.evaluate_path(subject, object, reading);
            if stricter(&decision, &strictest.0) {
                strictest = (decision, reading);
            }
        }
        strictest
    }

    /// The first matching rule's decision, for one reading of the path.
    fn evaluate_path(&self, subject: &Subject<'_>, object: &Object, path: &str) -> Decision {
        for i in self.index.candidates(&object.domain) {
            let rule = &self.rules[i];
            if rule.is_match(subject, object, path) {
                return Decision { policy: rule.policy, rule: Some(i + 1), has_subjects: rule.has_subjects };
            }
        }
        Decision { policy: self.default_policy, rule: None, has_subjects: false }
    }

    /// Every rule's criteria against the request, in order (no index: for explaining),
    /// for the reading of the path that decided.
    pub fn explain(&self, subject: &Subject<'_>, object: &Object) -> Vec<RuleReport> {
        let (decision, path) = self.decide(subject, object);
        let decided = decision.rule;
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| RuleReport {
                position: i + 1,
                policy: r.policy,
                domain: r.domain(subject, object),
                resources: r.resources(subject, path),
                query: r.query(object),
                methods: r.methods(object),
                networks: r.networks(subject),
                subjects: r.subjects(subject),
                subjects_exact: r.subjects_exact(subject),
                decided: decided == Some(i + 1),
            })
            .collect()
    }

    /// The policy when no rule matches.
    pub fn default_policy(&self) -> Policy {
        self.default_policy
    }

    /// True when some rule (or the default policy) asks for two factors: the portal then
    /// offers second-factor methods. Kept with the rules so that it follows a reload.
    pub fn second_factor_required(&self) -> bool {
        self.second_factor_required
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// True when `a` is stricter than `b`: a stronger policy, or the same policy without
/// depending on who the user is (a deny for everyone is final; one that names subjects
/// lets an anonymous user log in first).
fn stricter(a: &Decision, b: &Decision) -> bool {
    (a.policy, !a.has_subjects) > (b.policy, !b.has_subjects)
}

fn compile_query(q: &crate::config::schema::QueryCondition) -> Result<QueryMatcher, String> {
    let key = q.key.clone().unwrap_or_default();
    let value = match &q.value {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let operator = q.operator.clone().unwrap_or_else(|| if value.is_some() { "equal" } else { "present" }.to_string());
    Ok(match operator.as_str() {
        "present" | "absent" => QueryMatcher::Present { key, present: operator == "present" },
        "equal" | "not equal" => {
            QueryMatcher::Equal { key, value: value.unwrap_or_default(), equal: operator == "equal" }
        }
        "pattern" | "not pattern" => QueryMatcher::Pattern {
            key,
            pattern: regex::Regex::new(&value.unwrap_or_default()).map_err(|e| e.to_string())?,
            matches: operator == "pattern",
        },
        other => return Err(format!("unknown operator '{other}'")),
    })
}

#[cfg(test)]
mod tests;
