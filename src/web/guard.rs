//! The one guard every request passes: a body limit, security headers, and for `POST`
//! the same-origin check and the constant-time bearer token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{BODY_LIMIT, Refusal, Web, error};

/// The host name of a `Host` header or an origin's authority (`name:port`,
/// `[v6]:port`), lowercased, without the port.
pub(super) fn host_name(authority: &str) -> String {
    let a = authority.trim();
    let name = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        a.rsplit_once(':').map_or(a, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                a
            }
        })
    };
    name.to_ascii_lowercase()
}

/// Security headers on every response; `Host` must be one of `[server] allowed_hosts`
/// (a page on another name — DNS rebinding — reads nothing); for `POST`: an origin on
/// the allowed hosts only, and the token.
pub(super) async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    // HTTP/1.1 requires Host; a request without one is refused too.
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(host_name);
    if !host
        .as_deref()
        .is_some_and(|h| web.allowed_hosts.iter().any(|a| a == h))
    {
        // The names it does answer to are not listed: a stranger learns none of them.
        let mut r = error(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "this server does not answer to `{}`: add the name to [server] allowed_hosts",
                crate::text::visible(&host.unwrap_or_default())
            ),
        );
        secure(r.headers_mut());
        return r;
    }
    // No route reads a body; refuse big ones before anything else.
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if length.is_some_and(|n| n > BODY_LIMIT) {
        let mut r = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request bodies are limited to {BODY_LIMIT} bytes"),
        );
        secure(r.headers_mut());
        return r;
    }
    if request.method() != Method::POST
        && request.uri().path() != "/healthz"
        && let Some(read_token) = &web.read_token
        && !may_read(read_token, request.headers())
    {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "reading this server needs its read token",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"vitals\", charset=\"UTF-8\""),
        );
        secure(r.headers_mut());
        return r;
    }
    if request.method() == Method::POST
        && let Err(refused) = authorize(&web, request.headers())
    {
        let mut r = refused.into_response();
        secure(r.headers_mut());
        return r;
    }
    let post = request.method() == Method::POST;
    let mut response = next.run(request).await;
    if post {
        web.invalidate();
    }
    secure(response.headers_mut());
    response
}

fn secure(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
}

/// The credentials of an `Authorization` value with the scheme `scheme` (compared
/// without case, as RFC 7235 says: `Bearer`, `bearer` and `BEARER` are one scheme).
fn credentials<'v>(value: &'v str, scheme: &str) -> Option<&'v str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim_start())
}

/// Whether the request carries the read token: `Bearer <token>`, or Basic with any
/// user name and the token as password. Compared in constant time.
fn may_read(token: &str, headers: &HeaderMap) -> bool {
    use base64::Engine as _;
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let given = if let Some(bearer) = credentials(value, "bearer") {
        bearer.to_owned()
    } else if let Some(basic) = credentials(value, "basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&decoded).into_owned();
        text.split_once(':')
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default()
    } else {
        return false;
    };
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn authorize(web: &Web, headers: &HeaderMap) -> Result<(), Refusal> {
    // Cross-site requests are refused whatever they carry.
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "cross-site requests are refused",
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        // The origin's host must be one of ours (never compared with the request's own
        // Host, which a rebinding page chooses).
        let origin = origin.as_bytes();
        let text = String::from_utf8_lossy(origin);
        let allowed = ["http://", "https://"]
            .iter()
            .find_map(|scheme| text.strip_prefix(scheme))
            .is_some_and(|authority| {
                !authority.contains('/') && web.allowed_hosts.contains(&host_name(authority))
            });
        if !allowed {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!(
                    "origin {} is not this server: actions are taken from vitals' own page",
                    String::from_utf8_lossy(origin)
                ),
            ));
        }
    }
    let Some(token) = &web.token else {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "actions are disabled: set the environment variable {} to a secret token and restart vitals",
                web.token_env
            ),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| credentials(v, "bearer"));
    let Some(given) = given else {
        return Err(Refusal {
            challenge: Some("Bearer"),
            ..Refusal::new(
                StatusCode::UNAUTHORIZED,
                "this action needs `Authorization: Bearer <token>`",
            )
        });
    };
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal {
            challenge: Some("Bearer error=\"invalid_token\""),
            ..Refusal::new(StatusCode::UNAUTHORIZED, "wrong token")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn the_auth_scheme_is_read_without_case() {
        for v in ["Bearer t0k", "bearer t0k", "BEARER  t0k"] {
            assert_eq!(super::credentials(v, "bearer"), Some("t0k"), "{v}");
        }
        assert_eq!(super::credentials("Basic x", "bearer"), None);
        assert_eq!(super::credentials("Bearer", "bearer"), None);
    }

    #[test]
    fn host_names_lose_their_port_and_case() {
        assert_eq!(host_name("127.0.0.1:8686"), "127.0.0.1");
        assert_eq!(host_name("Vitals.Desk.Example"), "vitals.desk.example");
        assert_eq!(host_name("[::1]:8686"), "::1");
        assert_eq!(host_name("evil.example:x"), "evil.example:x");
    }
}
