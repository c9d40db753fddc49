//! The criteria of a rule, each a small matcher: domain (exact, wildcard, `{user}`/`{group}`
//! placeholders, regex with `User`/`Group` groups), resources, query, methods, networks and
//! subjects. Semantics follow Authelia's access control exactly.

use ipnet::IpNet;
use regex::Regex;

use super::{Object, Subject};

/// A regex that may name `User` and/or `Group` groups, which must then match the subject.
#[derive(Debug, Clone)]
pub struct SubjectRegex {
    regex: Regex,
    user: Option<usize>,
    group: Option<usize>,
}

impl SubjectRegex {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(pattern)?;
        let position = |name| regex.capture_names().position(|n| n == Some(name));
        Ok(Self { user: position("User"), group: position("Group"), regex })
    }

    /// True when the pattern's match depends on who the subject is.
    pub fn names_subject(&self) -> bool {
        self.user.is_some() || self.group.is_some()
    }

    /// Matches `input`; for an anonymous subject, any match of the pattern counts (the user
    /// might be the one the groups name).
    pub fn is_match(&self, input: &str, subject: &Subject<'_>) -> bool {
        if !self.names_subject() {
            return self.regex.is_match(input);
        }
        let Some(caps) = self.regex.captures(input) else { return false };
        if subject.is_anonymous() {
            return true;
        }
        let group_text = |i: Option<usize>| i.map(|i| caps.get(i).map_or("", |m| m.as_str()));
        if let Some(user) = group_text(self.user)
            && !user.eq_ignore_ascii_case(subject.username)
        {
            return false;
        }
        if let Some(group) = group_text(self.group)
            && !subject.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
        {
            return false;
        }
        true
    }
}

/// One entry of `domain` or `domain_regex`.
#[derive(Debug, Clone)]
pub enum DomainMatcher {
    /// `app.example.com`.
    Exact(String),
    /// `*.example.com`: stored as the suffix `.example.com`; any depth, not the bare domain.
    Wildcard(String),
    /// `{user}.example.com`: stored as `.example.com`.
    User(String),
    /// `{group}.example.com`: stored as `.example.com`.
    Group(String),
    /// `domain_regex`.
    Regex(SubjectRegex),
}

impl DomainMatcher {
    /// Parses a `domain` entry (lower-cased; domains match case-insensitively).
    pub fn parse(domain: &str) -> Self {
        let d = domain.trim().to_ascii_lowercase();
        if let Some(rest) = d.strip_prefix("*.") {
            Self::Wildcard(format!(".{rest}"))
        } else if let Some(rest) = d.strip_prefix("{user}") {
            Self::User(rest.to_string())
        } else if let Some(rest) = d.strip_prefix("{group}") {
            Self::Group(rest.to_string())
        } else if d == "*" {
            Self::Wildcard(String::new())
        } else {
            Self::Exact(d)
        }
    }

    /// True when whether it matches depends on the subject.
    pub fn names_subject(&self) -> bool {
        match self {
            Self::User(_) | Self::Group(_) => true,
            Self::Regex(r) => r.names_subject(),
            _ => false,
        }
    }

    /// Matches the (lower-case) `domain` of a request.
    pub fn is_match(&self, domain: &str, subject: &Subject<'_>) -> bool {
        match self {
            Self::Exact(d) => domain == d,
            Self::Wildcard(suffix) => domain.ends_with(suffix.as_str()) && domain.len() > suffix.len(),
            Self::User(suffix) => {
                if subject.is_anonymous() {
                    return domain.len() > suffix.len() && domain.ends_with(suffix.as_str());
                }
                domain.strip_suffix(suffix.as_str()).is_some_and(|label| label.eq_ignore_ascii_case(subject.username))
            }
            Self::Group(suffix) => {
                if subject.is_anonymous() {
                    return domain.len() > suffix.len() && domain.ends_with(suffix.as_str());
                }
                match domain.find('.') {
                    Some(i) => {
                        &domain[i..] == suffix && subject.groups.iter().any(|g| g.eq_ignore_ascii_case(&domain[..i]))
                    }
                    None => false,
                }
            }
            Self::Regex(r) => r.is_match(domain, subject),
        }
    }
}

/// A query condition.
#[derive(Debug, Clone)]
pub enum QueryMatcher {
    /// `present` / `absent`.
    Present { key: String, present: bool },
    /// `equal` / `not equal`, against the first value of the key ("" when absent).
    Equal { key: String, value: String, equal: bool },
    /// `pattern` / `not pattern`, against the first value of the key ("" when absent).
    Pattern { key: String, pattern: Regex, matches: bool },
}

impl QueryMatcher {
    /// Checks the condition against the request's query pairs.
    pub fn is_match(&self, object: &Object) -> bool {
        match self {
            Self::Present { key, present } => object.query_has(key) == *present,
            Self::Equal { key, value, equal } => (object.query_first(key) == value) == *equal,
            Self::Pattern { key, pattern, matches } => pattern.is_match(object.query_first(key)) == *matches,
        }
    }
}

/// One AND-ed list of `subject` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectAtom {
    /// `user:<name>`.
    User(String),
    /// `group:<name>`.
    Group(String),
    /// `oauth2:client:<id>`.
    Client(String),
    /// `token:any` (`None`): the request came with a personal API token; `token:<name>`:
    /// with a token of that name. A token stands for its owner, so `user:` and `group:`
    /// entries match token requests too; these entries tell them apart.
    Token(Option<String>),
}

impl SubjectAtom {
    /// Parses one entry (validated beforehand).
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(name) = text.strip_prefix("user:") {
            Some(Self::User(name.to_string()))
        } else if let Some(name) = text.strip_prefix("group:") {
            Some(Self::Group(name.to_string()))
        } else if let Some(name) = text.strip_prefix("token:") {
            Some(Self::Token((name != "any").then(|| name.to_string())))
        } else {
            text.strip_prefix("oauth2:client:").map(|id| Self::Client(id.to_string()))
        }
    }

    /// True when `subject` is this user, in this group, or this client.
    pub fn is_match(&self, subject: &Subject<'_>) -> bool {
        match self {
            Self::User(name) => !subject.username.is_empty() && subject.username == name,
            Self::Group(name) => subject.groups.iter().any(|g| g == name),
            Self::Client(id) => !subject.client_id.is_empty() && subject.client_id == id,
            Self::Token(None) => subject.token.is_some(),
            Self::Token(Some(name)) => subject.token == Some(name.as_str()),
        }
    }
}

/// True when `ip` is in one of `networks` (or there are none).
pub fn networks_match(networks: &[IpNet], ip: Option<std::net::IpAddr>) -> bool {
    networks.is_empty() || ip.is_some_and(|ip| networks.iter().any(|n| n.contains(&ip)))
}
