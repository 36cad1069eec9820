//! The web client: static files embedded in the binary and served at `/` (the page) and
//! `/assets/<file>` (scripts, styles, icon). No build step: the files under
//! `crates/gateway/web/` are the client, plain HTML, CSS and JavaScript modules.
//!
//! These routes are not API: they are not in [`crate::openapi::OPERATIONS`] (the router
//! merges [`router`] beside the table's rows). Every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only, nothing inline),
//! `Cache-Control: no-cache` with an `ETag` (names carry no content hash, so a browser
//! revalidates and gets `304 Not Modified` while a file is unchanged).
//!
//! Working on the client: with `SWITCHBOARD_WEB_DIR=crates/gateway/web` the same files are
//! read from that directory on each request instead (only the names embedded here), so a
//! change shows on reload without rebuilding.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::app::AppState;

/// One embedded file.
struct Asset {
    /// Path under `web/` (and under `/assets/`).
    path: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            bytes: include_bytes!(concat!("../../web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the client. A file missing here is not served.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("stream.js", JS),
    asset!("dom.js", JS),
    asset!("directory.js", JS),
    asset!("thread.js", JS),
    asset!("views/login.js", JS),
    asset!("views/interactions.js", JS),
    asset!("views/compose_new.js", JS),
    asset!("views/channels.js", JS),
    asset!("views/inboxes.js", JS),
    asset!("views/queues.js", JS),
    asset!("views/search.js", JS),
    asset!("views/contacts.js", JS),
    asset!("views/settings.js", JS),
    asset!("views/webhooks.js", JS),
];

/// Scripts, styles, images and connections (the API, the WebSocket) from this origin only;
/// images also from `blob:` (attachments are fetched with the bearer token and shown
/// from object URLs). No inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/` and `/assets/{*path}`, merged into the application's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers).await
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers).await
}

/// The directory to read the files from instead of the embedded copies, if set.
fn dev_dir() -> Option<&'static std::path::Path> {
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("SWITCHBOARD_WEB_DIR").map(Into::into))
        .as_deref()
}

fn etag_of(bytes: &[u8]) -> String {
    let hash = blake3::hash(bytes).to_hex();
    format!("\"{}\"", &hash.as_str()[..20])
}

async fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (StatusCode::NOT_FOUND, security_headers(), "not found").into_response();
    };
    let bytes: std::borrow::Cow<'static, [u8]> = match dev_dir() {
        Some(dir) => {
            let file = dir.join(asset.path);
            match tokio::task::spawn_blocking(move || std::fs::read(file)).await {
                Ok(Ok(b)) => b.into(),
                _ => asset.bytes.into(),
            }
        }
        None => asset.bytes.into(),
    };
    let etag = etag_of(&bytes);
    let mut headers = security_headers();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    (StatusCode::OK, headers, bytes.into_owned()).into_response()
}

fn security_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_unique_name_and_the_page_loads_only_local_modules() {
        let mut names: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ASSETS.len());
        let page = std::str::from_utf8(ASSETS[0].bytes).expect("utf-8");
        assert!(page.contains("src=\"/assets/app.js\""));
        assert!(!page.contains("<script>"), "no inline script");
        assert!(!page.contains("style="), "no inline style");
    }
}
