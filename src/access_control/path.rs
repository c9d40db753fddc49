//! How the access rules read a request's path.
//!
//! An application reads the path the client sent in its own way, and a rule must not
//! judge a weaker path than the one served. Most servers decode the path once and then
//! resolve dot segments and merge slashes (Go's ServeMux, NGINX, most frameworks); some
//! match the raw segments and decode each afterwards, so that `%2F` stays inside its
//! segment; some decode again; RFC 3986 resolves `..` before merging `//`, so
//! `/public//../admin` is `/public/admin` there and `/admin` elsewhere; servlet
//! containers drop `;parameters` from segments, so `/public/..;/admin` is `/admin`.
//! Decoding until nothing changes is not safe either: `/account/%252e%252e/public` is then
//! judged as `/public` while the application, decoding once, serves `/account/%2e%2e/public`.
//!
//! So a path is handled in two steps:
//!
//! - [`ambiguity`] refuses (the authorization endpoints answer 400) the spellings whose
//!   readings reach different resources: a backslash (`\` or `%5C`, a separator on some
//!   servers), an encoded dot segment (`%2e%2e`, `.%2E`), a percent-encoding that is
//!   itself encoded (`%2561`: decoding twice differs from decoding once), and an encoded
//!   slash (`%2F`) unless `access_control.allow_encoded_slashes` is set;
//! - every other path is judged in each of its [`readings`], and the strictest decision
//!   applies. For a path that passed the first step they differ only around `%2F` (when
//!   allowed), `//..` and `;`.
//!
//! [`normalize`] is the first reading, the usual one: `/admin/../secret`, `/%61dmin` and
//! `//admin` are matched as `/secret`, `/admin` and `/admin`.

use std::borrow::Cow;

/// The usual reading of `path` (decoded once, then cleaned: dot segments resolved,
/// repeated slashes merged, a trailing slash kept), followed by `?query` when there is a
/// query (kept as sent).
pub fn normalize(path: &str, query: Option<&str>) -> String {
    with_query(clean(&decode(path)), query)
}

/// `path` followed by `?query` when there is a query.
pub fn with_query(mut path: String, query: Option<&str>) -> String {
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// Every way a server may read `path` (no query), cleaned, without repetitions; the usual
/// one ([`normalize`]) first:
///
/// 1. decoded once, then cleaned;
/// 2. decoded until decoding changes nothing, then cleaned;
/// 3. cleaned as sent, then decoded once (`%2F` stays inside its segment);
/// 4. decoded once, then dot segments resolved before slashes are merged (RFC 3986);
/// 5. decoded once, `;parameters` dropped from each segment, then cleaned.
pub fn readings(path: &str) -> Vec<String> {
    match only_reading(path) {
        Some(reading) => vec![reading],
        None => all_readings(path),
    }
}

/// The one reading of a path without escapes, parameters or empty segments (every way of
/// reading it gives the cleaned path), or `None` when [`readings`] may find several.
pub fn only_reading(path: &str) -> Option<String> {
    (!path.contains(['%', ';']) && !path.contains("//")).then(|| clean(path))
}

/// Every reading of `path`, for a path [`only_reading`] gives none of: the full work of
/// [`readings`].
pub fn all_readings(path: &str) -> Vec<String> {
    let once = decode(path);
    let mut all = vec![clean(&once)];
    for reading in [
        clean(&fully_decoded(path)),
        decode(&clean(path)).into_owned(),
        clean_dots_first(&once),
        clean(&without_parameters(&once)),
    ] {
        if !all.contains(&reading) {
            all.push(reading);
        }
    }
    all
}

/// Why `path` (as the client sent it, no query) must be refused rather than judged, or
/// `None`: it holds a backslash, an encoded dot segment, an encoding that decodes again,
/// or an encoded slash when `allow_encoded_slashes` is false.
pub fn ambiguity(path: &str, allow_encoded_slashes: bool) -> Option<&'static str> {
    // Every ambiguity below needs a backslash or a percent sign: the usual path has
    // neither, and is checked with one scan.
    if !path.contains(['%', '\\']) {
        return None;
    }
    if path.contains('\\') || has_escape_of(path, b'\\') {
        return Some("a backslash, which some servers take for a slash");
    }
    if !allow_encoded_slashes && has_escape_of(path, b'/') {
        return Some("an encoded slash (%2F); access_control.allow_encoded_slashes accepts them");
    }
    if has_escape(&decode(path)) {
        return Some("an encoded percent-encoding, which reads differently decoded once and twice");
    }
    let slashes = path.replace("%2F", "/").replace("%2f", "/");
    for segment in slashes.split('/') {
        // `;parameters` are dropped by some servers, before or after decoding.
        let sent = segment.split(';').next().unwrap_or_default();
        let decoded = decode(segment);
        let read = decoded.split(';').next().unwrap_or_default();
        if matches!(read, "." | "..") && sent != read {
            return Some("an encoded dot segment (%2E), a name to some servers and a step up to others");
        }
    }
    None
}

/// `text` percent-decoded once (invalid UTF-8 replaced).
fn decode(text: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy()
}

/// Most decoding rounds: each round that changes anything removes at least two bytes, and
/// deeper nesting than this is an attack, not a URL.
const MAX_DECODE_ROUNDS: usize = 16;

/// `path` percent-decoded until decoding changes nothing more.
fn fully_decoded(path: &str) -> String {
    let mut current = path.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let decoded = decode(&current);
        if decoded == current {
            break;
        }
        current = decoded.into_owned();
    }
    current
}

/// True when `text` holds a `%` followed by two hex digits.
fn has_escape(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

/// True when `text` holds the percent-encoding of `byte`, in either case.
fn has_escape_of(text: &str, byte: u8) -> bool {
    let hex = |b: u8| (b as char).to_digit(16);
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && matches!((hex(w[1]), hex(w[2])), (Some(h), Some(l)) if h * 16 + l == u32::from(byte)))
}

/// Lexical cleaning as Go's `path.Clean` (repeated slashes merged, then dot segments
/// resolved), plus the trailing slash of the input.
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
    join(&segments, path)
}

/// Dot segments resolved as RFC 3986 does, where `..` also removes an empty segment
/// (`/a//../b` is `/a/b`), then slashes merged.
fn clean_dots_first(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    segments.retain(|s| !s.is_empty());
    join(&segments, path)
}

/// `path` with `;` and what follows it removed from each segment.
fn without_parameters(path: &str) -> String {
    path.split('/').map(|segment| segment.split(';').next().unwrap_or_default()).collect::<Vec<_>>().join("/")
}

/// `/`-joined `segments`, with a trailing slash when `original` has one.
fn join(segments: &[&str], original: &str) -> String {
    let mut out = String::with_capacity(original.len() + 1);
    for segment in segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = original.len() > 1 && original.ends_with('/');
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
            // Decoded once, as the application does: what is encoded twice stays encoded.
            ("/%2561dmin", None, "/%61dmin"),
            ("/account/%252e%252e/public", None, "/account/%2e%2e/public"),
            ("/100%25", None, "/100%"),
        ];
        for (path, query, expected) in cases {
            assert_eq!(normalize(path, query), expected, "{path:?} {query:?}");
        }
    }

    #[test]
    fn readings_table() {
        let cases: [(&str, &[&str]); 9] = [
            ("/admin", &["/admin"]),
            ("/a%20b/", &["/a b/"]),
            ("/public/../admin", &["/admin"]),
            // An application decoding twice.
            ("/account/%252e%252e/public", &["/account/%2e%2e/public", "/public"]),
            // `%2F`: a separator, or a character of its segment.
            ("/public%2F..%2Fadmin", &["/admin", "/public/../admin"]),
            ("/repos/a%2Fb", &["/repos/a/b"]),
            // `..` after an empty segment: merged first (Go, NGINX) or not (RFC 3986).
            ("/public//../admin", &["/admin", "/public/admin"]),
            // Servlet path parameters.
            ("/public/..;/admin", &["/public/..;/admin", "/admin"]),
            ("/shop;jsessionid=1/cart", &["/shop;jsessionid=1/cart", "/shop/cart"]),
        ];
        for (path, expected) in cases {
            assert_eq!(readings(path), expected, "{path:?}");
        }
    }

    #[test]
    fn plain_paths_have_one_reading() {
        for path in ["/", "", "/a/b/", "/a/../b", "/../x", "/a/./b/..", "a/../b", "/x/.../y", "/a\\b"] {
            assert_eq!(readings(path), all_readings(path), "{path}");
            assert_eq!(readings(path).len(), 1, "{path}");
        }
    }

    #[test]
    fn ambiguous_spellings_are_named() {
        let refused = [
            "/account/%252e%252e/public",
            "/%2561dmin",
            "/public/%25%32%65%25%32%65/admin",
            "/account/%2e%2e/public",
            "/account/.%2E/public",
            "/a/%2e/b",
            "/a/%2e%2e;x/b",
            "/a/..%3bx/b",
            "/account\\..\\public",
            "/account/%5c..%5Cpublic",
            "/public/..%2fadmin",
            "/public%2F..%2Fadmin",
        ];
        for path in refused {
            assert!(ambiguity(path, false).is_some(), "{path}");
        }
        let accepted = [
            "/",
            "/admin/../public",
            "/public//../admin",
            "/public/..;/admin",
            "/100%25",
            "/100%",
            "/caf%C3%A9",
            "/file%2Etxt",
            "/...",
            "/%2e%2e%2e",
            "/a%20b",
        ];
        for path in accepted {
            assert_eq!(ambiguity(path, false), None, "{path}");
        }
        // Encoded slashes, when allowed; the other encodings stay refused.
        assert_eq!(ambiguity("/repos/a%2Fb", true), None);
        assert_eq!(ambiguity("/public%2F..%2Fadmin", true), None, "`..` as sent: judged in both readings");
        assert!(ambiguity("/repos/a%2Fb", false).is_some());
        assert!(ambiguity("/a%2F%2e%2e%2Fb", true).is_some());
        assert!(ambiguity("/a%252Fb", true).is_some());
    }

    #[test]
    fn normalizing_twice_changes_nothing_for_accepted_paths() {
        for path in ["/a/../b", "//x/./y/", "/%2e%2e/z", "/", "/100%25", "/a%2Fb"] {
            let once = normalize(path, None);
            assert_eq!(normalize(&once, None), once, "{path}");
        }
    }
}
