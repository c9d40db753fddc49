//! Normalizing the request path before `resources` rules see it, so that encodings and
//! dot segments cannot steer a request past a rule: `/admin/../secret`, `/%61dmin`,
//! `/%2561dmin` and `//admin` are matched as `/secret`, `/admin`, `/admin` and `/admin`.
//! Percent-decoding repeats until nothing changes (an application behind the proxy that
//! decodes twice then sees what the rules saw), which also makes normalizing idempotent.

use std::borrow::Cow;

/// `path` percent-decoded and cleaned (dot segments resolved, repeated slashes collapsed, a
/// trailing slash kept), followed by `?query` when there is a query (kept as sent).
pub fn normalize(path: &str, query: Option<&str>) -> String {
    let mut out = clean(&fully_decoded(path));
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Most decoding rounds: each round that changes anything removes at least two bytes, and
/// deeper nesting than this is an attack, not a URL.
const MAX_DECODE_ROUNDS: usize = 16;

/// `path` percent-decoded until decoding changes nothing more.
fn fully_decoded(path: &str) -> String {
    let mut current = path.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded: Cow<'_, str> = percent_encoding::percent_decode_str(&current).decode_utf8_lossy();
        if decoded == current {
            break;
        }
        current = decoded.into_owned();
    }
    current
}

/// Lexical cleaning as Go's `path.Clean`, plus the trailing slash of the input.
fn clean(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = path.len() > 1 && path.ends_with('/');
    if out.is_empty() || trailing {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let cases = [
            ("/", None, "/"),
            ("", None, "/"),
            ("/admin", None, "/admin"),
            ("/admin/", None, "/admin/"),
            ("/admin/../secret", None, "/secret"),
            ("/%61dmin", None, "/admin"),
            ("/%2e%2e/admin", None, "/admin"),
            ("/public/..%2fadmin", None, "/admin"),
            ("//admin//x", None, "/admin/x"),
            ("/a/./b/.", None, "/a/b"),
            ("/a/b/..", None, "/a"),
            ("/../../etc/passwd", None, "/etc/passwd"),
            ("/api", Some("a=1&b=%20"), "/api?a=1&b=%20"),
            ("/", Some("x=1"), "/?x=1"),
            ("/a/", Some(""), "/a/"),
            ("/caf%C3%A9", None, "/café"),
            ("/%2561dmin", None, "/admin"),
            ("/%252e%252e/admin", None, "/admin"),
            ("/100%25", None, "/100%"),
        ];
        for (path, query, expected) in cases {
            assert_eq!(normalize(path, query), expected, "{path:?} {query:?}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing_for_unencoded_paths() {
        for path in ["/a/../b", "//x/./y/", "/%2e%2e/z", "/"] {
            let once = normalize(path, None);
            assert_eq!(normalize(&once, None), once, "{path}");
        }
    }
}
