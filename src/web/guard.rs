//! The one guard every request passes: a body limit, security headers, and for `POST`
//! the same-origin check and the constant-time bearer token.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{BODY_LIMIT, Refusal, Web, error};

/// Security headers on every response; for `POST`: same-origin only, and the token.
pub(super) async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
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
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cross-origin-opener-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
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
        let host = headers
            .get(header::HOST)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let origin = origin.as_bytes();
        let same = [&b"http://"[..], b"https://"]
            .iter()
            .any(|scheme| origin.strip_prefix(*scheme) == Some(host));
        if !same {
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
        .and_then(|v| v.strip_prefix("Bearer "));
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
