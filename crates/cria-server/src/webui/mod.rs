//! The chat page at `/`: one HTML page, two scripts and a style sheet compiled into the binary (no CDN, works
//! offline). The page itself needs no API key; its calls to `/v1/*` carry the key the user types in.
//!
//! Every file is answered with `Cache-Control: no-cache` and a strong `ETag` (a hash of the file, fixed at
//! build time): a browser revalidates on each load and gets a 304 until the binary changes, so an upgraded
//! server never runs against a stale script.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// One compiled-in file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: Etag,
}

/// A compiled-in file with its content type.
macro_rules! asset {
    ($file:literal, $content_type:literal) => {
        Asset {
            body: include_str!($file),
            content_type: $content_type,
            etag: const_etag(include_str!($file)),
        }
    };
}

static PAGE: Asset = asset!("index.html", "text/html; charset=utf-8");
static SCRIPT: Asset = asset!("app.js", "text/javascript; charset=utf-8");
static MARKDOWN: Asset = asset!("markdown.js", "text/javascript; charset=utf-8");
static STYLE: Asset = asset!("app.css", "text/css; charset=utf-8");

/// What the page may load and talk to: only this server. Model text is never parsed as HTML (the page builds
/// DOM nodes from it), and this header is the second line of defence if that ever changes.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes (merged into the router unless `--no-webui`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { serve(&PAGE, &h) }))
        .route(
            "/webui/app.js",
            get(|h: HeaderMap| async move { serve(&SCRIPT, &h) }),
        )
        .route(
            "/webui/markdown.js",
            get(|h: HeaderMap| async move { serve(&MARKDOWN, &h) }),
        )
        .route(
            "/webui/app.css",
            get(|h: HeaderMap| async move { serve(&STYLE, &h) }),
        )
}

/// The file, or 304 when the browser already holds this version.
fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let etag = HeaderValue::from_static(asset.etag.as_str());
    let headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, etag),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
    ];
    if matches_etag(request, asset.etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    )];
    (headers, content_type, asset.body).into_response()
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches_etag(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// A quoted ETag of 16 hex digits, built at compile time.
struct Etag {
    bytes: [u8; 18],
}

impl Etag {
    fn as_str(&self) -> &str {
        // Built from ASCII hex digits and quotes only.
        std::str::from_utf8(&self.bytes).unwrap_or("\"0\"")
    }
}

/// FNV-1a over the file: it only has to change when the file does.
const fn const_etag(text: &str) -> Etag {
    let bytes = text.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut d = 0;
    while d < 16 {
        out[1 + d] = digits[((hash >> (60 - 4 * d)) & 0xf) as usize];
        d += 1;
    }
    Etag { bytes: out }
}
