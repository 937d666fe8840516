//! The render cache: each of `/`, `/api/status` and `/metrics` is rendered at most
//! every [`RENDER_EVERY`](super::RENDER_EVERY) however many read it, readers never wait
//! for a re-render, and any `POST` drops the rendered bodies at once.
//!
//! Each body carries an ETag over what it shows (the render's own time left out), so a
//! reader whose copy is current gets `304 Not Modified` and no body; and a gzip copy,
//! compressed once per render at the first reader that asks for it.

use std::hash::Hasher;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{RENDER_EVERY, Web};

/// A rendered body, its ETag and its gzip copy (made on first demand).
#[derive(Clone)]
pub(super) struct Body {
    bytes: Bytes,
    /// The hash of the body with the render's time left out.
    tag: u64,
    gzip: Arc<OnceLock<Bytes>>,
}

/// What a render gives: the body with markers where the render's own time goes, and
/// each marker's text. The ETag is taken before the markers are filled, so a body that
/// differs from the last only in when it was rendered keeps its ETag.
pub(super) struct Render {
    pub body: Vec<u8>,
    pub fills: Vec<(&'static str, String)>,
}

impl From<Vec<u8>> for Render {
    fn from(body: Vec<u8>) -> Render {
        Render {
            body,
            fills: Vec::new(),
        }
    }
}

impl Body {
    fn new(r: Render) -> Body {
        let mut h = std::hash::DefaultHasher::new();
        h.write(&r.body);
        let mut body = r.body;
        for (marker, text) in &r.fills {
            body = replace(&body, marker.as_bytes(), text.as_bytes());
        }
        Body {
            bytes: Bytes::from(body),
            tag: h.finish(),
            gzip: Arc::default(),
        }
    }

    /// The ETag of the plain body; the gzip copy's ends in `-gz`.
    fn etag(&self, gzip: bool) -> String {
        format!("\"{:016x}{}\"", self.tag, if gzip { "-gz" } else { "" })
    }

    /// The response to a request with `headers`: 304 when its `If-None-Match` names
    /// this body (either encoding), the gzip copy when it accepts gzip, else the body.
    pub(super) fn respond(&self, headers: &HeaderMap, content_type: &'static str) -> Response {
        let gzip = accepts_gzip(headers);
        let etag = self.etag(gzip);
        let common = [
            (
                header::ETAG,
                HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            ),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ];
        if none_match(headers, &[&self.etag(false), &self.etag(true)]) {
            return (StatusCode::NOT_MODIFIED, common).into_response();
        }
        let ct = (header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if gzip {
            let body = self.gzip.get_or_init(|| compress(&self.bytes)).clone();
            let ce = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return (common, [ct, ce], body).into_response();
        }
        (common, [ct], self.bytes.clone()).into_response()
    }

    #[cfg(test)]
    fn text(&self) -> &[u8] {
        &self.bytes
    }
}

/// `body` with every `from` replaced by `to`.
fn replace(body: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(to);
        rest = &rest[i + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Fast gzip (level 1): a 265 KB status of 1,000 checks becomes about a tenth.
fn compress(body: &[u8]) -> Bytes {
    let mut e =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    Bytes::from(e.finish().unwrap_or_default())
}

/// The request accepts gzip: `Accept-Encoding` names `gzip` (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// `If-None-Match` names one of `etags` (weak comparison), or is `*`.
fn none_match(headers: &HeaderMap, etags: &[&str]) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || etags.contains(&t.trim_start_matches("W/")))
}

/// A rendered body and when it was rendered.
pub(super) struct Rendered {
    at: std::time::Instant,
    body: Body,
    /// A reader is rendering it anew.
    rendering: bool,
}

/// The rendered bodies by route.
pub(super) type Cache = Mutex<std::collections::HashMap<&'static str, Rendered>>;

/// The body of `route` from `cache` if rendered within [`RENDER_EVERY`] or being
/// rendered by another reader; else rendered now with `render`.
fn cached<E>(
    cache: &Cache,
    route: &'static str,
    render: impl FnOnce() -> Result<Render, E>,
) -> Result<Body, E> {
    let lock = || cache.lock().unwrap_or_else(|e| e.into_inner());
    {
        let mut cache = lock();
        if let Some(r) = cache.get_mut(route) {
            if r.at.elapsed() < RENDER_EVERY || r.rendering {
                return Ok(r.body.clone());
            }
            r.rendering = true;
        }
    }
    let rendered = render().map(Body::new);
    let mut cache = lock();
    match rendered {
        Ok(body) => {
            cache.insert(
                route,
                Rendered {
                    at: std::time::Instant::now(),
                    body: body.clone(),
                    rendering: false,
                },
            );
            Ok(body)
        }
        Err(e) => {
            if let Some(r) = cache.get_mut(route) {
                r.rendering = false;
            }
            Err(e)
        }
    }
}

impl Web {
    /// The body of `route` as rendered within the last [`RENDER_EVERY`], or rendered now.
    /// While one reader renders a stale body anew, the others get the stale one at once
    /// (no reader waits for another's render); after [`Web::invalidate`] there is no
    /// stale body, so the next readers see the change.
    pub(super) fn cached<E>(
        &self,
        route: &'static str,
        render: impl FnOnce() -> Result<Render, E>,
    ) -> Result<Body, E> {
        cached(&self.cache, route, render)
    }

    /// Forgets every rendered body (after anything that changes what they show).
    pub(super) fn invalidate(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn render(count: &Cell<u32>, body: &str) -> Result<Render, ()> {
        count.set(count.get() + 1);
        Ok(body.as_bytes().to_vec().into())
    }

    #[test]
    fn a_body_is_rendered_once_per_window() {
        let cache = Cache::default();
        let n = Cell::new(0);
        assert_eq!(cached(&cache, "page", || render(&n, "a")).unwrap().text(), b"a");
        assert_eq!(cached(&cache, "page", || render(&n, "b")).unwrap().text(), b"a");
        assert_eq!(n.get(), 1, "the second reader got the first render");
        assert_eq!(cached(&cache, "status", || render(&n, "s")).unwrap().text(), b"s");
        assert_eq!(n.get(), 2, "each route has its own body");
    }

    #[test]
    fn a_stale_body_is_served_while_another_reader_renders() {
        let cache = Cache::default();
        let n = Cell::new(0);
        cached(&cache, "page", || render(&n, "old")).unwrap();
        cache.lock().unwrap().get_mut("page").unwrap().at -= RENDER_EVERY;
        // Reader one starts a re-render; inside it, reader two gets the stale body.
        let outer = cached(&cache, "page", || {
            let inner = cached(&cache, "page", || render(&n, "never")).unwrap();
            assert_eq!(inner.text(), b"old");
            render(&n, "new")
        })
        .unwrap();
        assert_eq!(outer.text(), b"new");
        assert_eq!(n.get(), 2);
        assert_eq!(cached(&cache, "page", || render(&n, "x")).unwrap().text(), b"new");
    }

    #[test]
    fn a_failed_render_is_not_kept() {
        let cache = Cache::default();
        let n = Cell::new(0);
        cached(&cache, "page", || render(&n, "old")).unwrap();
        cache.lock().unwrap().get_mut("page").unwrap().at -= RENDER_EVERY;
        assert!(cached(&cache, "page", || Err::<Render, ()>(())).is_err());
        // The failure released the slot: the next reader renders.
        assert_eq!(
            cached(&cache, "page", || render(&n, "new")).unwrap().text(),
            b"new"
        );
    }

    fn at(when: &str, what: &str) -> Body {
        Body::new(Render {
            body: format!("{{\"generated_at\":\"@T@\",\"x\":\"{what}\"}}").into_bytes(),
            fills: vec![("@T@", when.to_owned())],
        })
    }

    fn request(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_etag_ignores_the_render_time_and_follows_the_content() {
        let (a, b, c) = (
            at("10:00:00", "ok"),
            at("10:00:01", "ok"),
            at("10:00:01", "critical"),
        );
        assert_eq!(a.text(), b"{\"generated_at\":\"10:00:00\",\"x\":\"ok\"}");
        assert_eq!(a.etag(false), b.etag(false));
        assert_ne!(b.etag(false), c.etag(false));
        assert_ne!(a.etag(false), a.etag(true), "each encoding has its own tag");
    }

    #[tokio::test]
    async fn a_current_copy_gets_304_and_gzip_is_served_to_who_asks() {
        let body = at("10:00:00", &"ok ".repeat(1000));
        let first = body.respond(&HeaderMap::new(), "application/json");
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(first.headers()[header::VARY], "accept-encoding");
        assert!(first.headers().get(header::CONTENT_ENCODING).is_none());

        let again = body.respond(&request(&[(header::IF_NONE_MATCH, &etag)]), "application/json");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let bytes = axum::body::to_bytes(again.into_body(), 1 << 20).await.unwrap();
        assert!(bytes.is_empty());
        let other = body.respond(&request(&[(header::IF_NONE_MATCH, "\"0\"")]), "application/json");
        assert_eq!(other.status(), StatusCode::OK);

        let gz = body.respond(
            &request(&[(header::ACCEPT_ENCODING, "br, gzip;q=0.8")]),
            "application/json",
        );
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let packed = axum::body::to_bytes(gz.into_body(), 1 << 20).await.unwrap();
        assert!(packed.len() * 10 < body.text().len(), "{} bytes", packed.len());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut plain).unwrap();
        assert_eq!(plain, body.text());

        let refused = body.respond(
            &request(&[(header::ACCEPT_ENCODING, "gzip;q=0, identity")]),
            "text/html",
        );
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
