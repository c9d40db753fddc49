//! The portal's static files, embedded in the binary. Each is served under a name that
//! carries a hash of its content (cacheable forever, as a new version gets a new name)
//! and under its plain name (revalidated with its ETag).

use http::StatusCode;
use http::header::{self, HeaderValue};
use sha2::{Digest, Sha256};

use crate::server::response::{self, HttpResponse};

/// One embedded file.
pub struct Asset {
    /// Plain URL path, e.g. `/static/css/main.css`.
    pub path: &'static str,
    /// URL path with the content hash, e.g. `/static/css/main.3f2a9c1d.css`.
    pub hashed_path: String,
    content_type: &'static str,
    body: &'static [u8],
    etag: String,
}

/// Every embedded file.
pub struct Assets {
    files: Vec<Asset>,
}

const FILES: &[(&str, &str, &[u8])] = &[
    ("/static/css/main.css", "text/css; charset=utf-8", include_bytes!("../../../web/static/css/main.css")),
    ("/static/js/passkey.js", "text/javascript; charset=utf-8", include_bytes!("../../../web/static/js/passkey.js")),
];

impl Assets {
    /// Hashes the embedded files.
    pub fn new() -> Self {
        let files = FILES
            .iter()
            .map(|(path, content_type, body)| {
                let digest = Sha256::digest(body);
                let short = crate::hex::encode(&digest[..6]);
                let (stem, ext) = path.rsplit_once('.').unwrap_or((path, ""));
                Asset {
                    path,
                    hashed_path: format!("{stem}.{short}.{ext}"),
                    content_type,
                    body,
                    etag: format!("\"{short}\""),
                }
            })
            .collect();
        Self { files }
    }

    /// The hashed URL path of the file whose name ends with `name` (`main.css`).
    pub fn url(&self, name: &str) -> Option<&str> {
        self.files.iter().find(|a| a.path.ends_with(name)).map(|a| a.hashed_path.as_str())
    }

    /// The file at `path`, hashed or plain, as a response (304 when `if_none_match`
    /// already names it).
    pub fn serve(&self, path: &str, if_none_match: Option<&str>) -> Option<HttpResponse> {
        let asset = self.files.iter().find(|a| a.path == path || a.hashed_path == path)?;
        let immutable = asset.hashed_path == path;
        let mut r = if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag)) {
            response::bytes(StatusCode::NOT_MODIFIED, asset.content_type, &b""[..])
        } else {
            response::bytes(StatusCode::OK, asset.content_type, asset.body)
        };
        let cache = if immutable { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
        r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if let Ok(etag) = HeaderValue::from_str(&asset.etag) {
            r.headers_mut().insert(header::ETAG, etag);
        }
        Some(r)
    }

    /// Sizes of the files, for the page-weight budget.
    pub fn sizes(&self) -> impl Iterator<Item = (&str, usize)> {
        self.files.iter().map(|a| (a.path, a.body.len()))
    }
}

impl Default for Assets {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_and_plain_names_with_etags() {
        let assets = Assets::new();
        let url = assets.url("main.css").unwrap().to_string();
        assert!(url.starts_with("/static/css/main.") && url.ends_with(".css") && url.len() > 24, "{url}");
        let hashed = assets.serve(&url, None).unwrap();
        assert_eq!(hashed.status(), 200);
        assert!(hashed.headers()[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        let etag = hashed.headers()[header::ETAG].to_str().unwrap().to_string();
        let plain = assets.serve("/static/css/main.css", Some(&etag)).unwrap();
        assert_eq!(plain.status(), 304);
        assert!(assets.serve("/static/css/other.css", None).is_none());
    }
}
