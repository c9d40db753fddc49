//! Normalizing the request path before `resources` rules see it, so that encodings and
//! dot segments cannot steer a request past a rule: `/admin/../secret`, `/%61dmin` and
//! `//admin` are matched as `/secret`, `/admin` and `/admin`.

use std::borrow::Cow;

/// `path` percent-decoded and cleaned (dot segments resolved, repeated slashes collapsed, a
/// trailing slash kept), followed by `?query` when there is a query (kept as sent).
pub fn normalize(path: &str, query: Option<&str>) -> String {
    let decoded: Cow<'_, str> = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    let mut out = clean(&decoded);
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
    out
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
