//! LDAP search filters from templates, and the escaping that keeps what a user typed a
//! value: RFC 4515 for values placed in filters, RFC 4514 for reading distinguished names.
//!
//! A template's placeholders are replaced in one pass over the template, so a value that
//! itself contains `{dn}` or `{input}` is never expanded again. Attribute-name placeholders
//! (`{username_attribute}`, ...) are operator configuration and go in as they are; search
//! values (`{input}`, `{username}`, `{dn}`) are always escaped.

use std::collections::HashMap;

/// Placeholders replaced once at startup by attribute names.
pub const ATTRIBUTE_PLACEHOLDERS: &[&str] = &[
    "username_attribute",
    "mail_attribute",
    "display_name_attribute",
    "member_of_attribute",
    "distinguished_name_attribute",
];

/// Placeholders replaced at each search.
pub const SEARCH_PLACEHOLDERS: &[&str] = &[
    "input",
    "username",
    "dn",
    "memberof:rdn",
    "memberof:dn",
    "date-time:generalized",
    "date-time:unix",
    "date-time:microsoft-nt",
];

/// Escapes `value` for use as an assertion value in a filter (RFC 4515 section 3): `*`,
/// `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            other => out.push(other),
        }
    }
    out
}

/// The first relative distinguished name of `dn` as `(type, value)`, with the value's
/// RFC 4514 escapes (`\,`, `\+`, `\\`, `\2C`, ...) undone. `None` when `dn` has no
/// `type=value` first part. A multi-valued first RDN (`cn=a+uid=b`) yields its first pair.
pub fn first_rdn(dn: &str) -> Option<(String, String)> {
    let (kind, rest) = dn.split_once('=')?;
    let kind = kind.trim();
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
        return None;
    }
    let mut bytes = Vec::new();
    let mut chars = rest.trim_start().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' | '+' | ';' => break,
            '\\' => {
                let first = chars.next()?;
                if first.is_ascii_hexdigit() && chars.peek().is_some_and(char::is_ascii_hexdigit) {
                    let second = chars.next()?;
                    let hex = format!("{first}{second}");
                    bytes.push(u8::from_str_radix(&hex, 16).ok()?);
                } else {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
                }
            }
            other => {
                let mut buf = [0; 4];
                bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    let value = String::from_utf8(bytes).ok()?;
    Some((kind.to_string(), value.trim_end().to_string()))
}

/// Checks a filter template: enclosed in parentheses, balanced (escaped parentheses are
/// values), and every `{placeholder}` one of the known ones.
pub fn check_template(template: &str) -> Result<(), String> {
    let trimmed = template.trim();
    if !trimmed.starts_with('(') || !trimmed.ends_with(')') {
        return Err("must be enclosed in parentheses, e.g. (&(uid={input})(objectClass=person))".into());
    }
    let mut depth = 0i32;
    let mut chars = trimmed.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("has a ')' without its '('".into());
                }
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if !ATTRIBUTE_PLACEHOLDERS.contains(&name.as_str()) && !SEARCH_PLACEHOLDERS.contains(&name.as_str()) {
                    return Err(format!("unknown placeholder {{{name}}}"));
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("has unbalanced parentheses".into());
    }
    Ok(())
}

/// Replaces every `{name}` of `template` found in `values` in one pass; other placeholders
/// are left as they are.
pub fn expand(template: &str, values: &HashMap<&str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match values.get(name) {
                    Some(value) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The time placeholders' values at Unix time `now`: LDAP generalized time
/// (`20060102150405.0Z`), Unix seconds, and Microsoft NT time (100 ns ticks since 1601).
pub fn time_values(now: i64) -> [(&'static str, String); 3] {
    let generalized: String = crate::clock::rfc3339(now).chars().filter(char::is_ascii_digit).collect();
    let nt = (i128::from(now) + 11_644_473_600) * 10_000_000;
    [
        ("date-time:generalized", format!("{generalized}.0Z")),
        ("date-time:unix", now.to_string()),
        ("date-time:microsoft-nt", nt.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("john"), "john");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(escape_filter_value(")(uid=*"), "\\29\\28uid=\\2a");
        assert_eq!(escape_filter_value("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(escape_filter_value("jöhn"), "jöhn");
    }

    #[test]
    fn one_pass_expansion_does_not_expand_values() {
        let values = HashMap::from([("input", escape_filter_value("{dn})(uid=*")), ("dn", "cn=x".to_string())]);
        let filter = expand("(&(uid={input})(member={dn})(x={unknown}))", &values);
        assert_eq!(filter, "(&(uid={dn}\\29\\28uid=\\2a)(member=cn=x)(x={unknown}))");
        assert_eq!(expand("(uid={input", &values), "(uid={input");
    }

    #[test]
    fn templates_are_checked() {
        assert!(check_template("(&({username_attribute}={input})(objectClass=person))").is_ok());
        assert!(check_template("(cn=a\\29b)").is_ok(), "an escaped parenthesis is a value");
        assert!(check_template("uid={input}").unwrap_err().contains("parentheses"));
        assert!(check_template("(&(uid={input})").unwrap_err().contains("unbalanced"));
        assert!(check_template("(uid={input}))(x=y)").unwrap_err().contains("without"));
        assert!(check_template("(uid={user})").unwrap_err().contains("{user}"));
    }

    #[test]
    fn first_rdns_are_read_per_rfc_4514() {
        assert_eq!(first_rdn("cn=admins,ou=groups,dc=example,dc=com"), Some(("cn".into(), "admins".into())));
        assert_eq!(first_rdn("CN=Smith\\, John,OU=x"), Some(("CN".into(), "Smith, John".into())));
        assert_eq!(first_rdn("cn=a\\2Cb\\5C+uid=x,dc=y"), Some(("cn".into(), "a,b\\".into())));
        assert_eq!(first_rdn("cn=caf\\C3\\A9,dc=y"), Some(("cn".into(), "café".into())));
        assert_eq!(first_rdn("no rdn here"), None);
        assert_eq!(first_rdn("c(n=x,dc=y"), None);
    }

    #[test]
    fn time_placeholders() {
        let [generalized, unix, nt] = time_values(1_136_214_245);
        assert_eq!(generalized.1, "20060102150405.0Z");
        assert_eq!(unix.1, "1136214245");
        assert_eq!(nt.1, "127806878450000000");
    }
}
