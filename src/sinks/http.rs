//! What every sink that speaks HTTP shares (Alertmanager, heartbeat, a webhook of a
//! plugin's): a client bounded by the sink's timeout, a URL as the logs may show it
//! (no credentials, no path or query: [`masked`]), a path joined onto a base URL that
//! keeps the base's query, and an answer read as delivered, worth retrying or refused
//! for good ([`outcome`]).

use std::time::Duration;

use super::SinkError;
use crate::plugin::BuildError;

/// An HTTP client whose every request is bounded by `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| BuildError::Setup {
            what: "HTTP client".into(),
            message: e.to_string(),
        })
}

/// A URL as logs and messages may show it: scheme, host and port, then `/…` when it
/// has a path or a query. A user and password, a token in the path (a heartbeat
/// service's ping URL) or in the query never show.
pub fn masked(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit('@').next().unwrap_or_default();
    let more = if rest[end..].trim_matches('/').is_empty() {
        ""
    } else {
        "/…"
    };
    format!("{scheme}://{host}{more}")
}

/// `base` with `path` appended to its path, its query and fragment kept:
/// `http://am:9093/prefix?token=x` + `/api/v2/alerts` →
/// `http://am:9093/prefix/api/v2/alerts?token=x`.
pub fn join(base: &str, path: &str) -> String {
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let split = rest.find(['?', '#']).unwrap_or(rest.len());
    let (head, tail) = rest.split_at(split);
    let head = head.trim_end_matches('/');
    let path = path.trim_start_matches('/');
    if scheme.is_empty() {
        format!("{head}/{path}{tail}")
    } else {
        format!("{scheme}://{head}/{path}{tail}")
    }
}

/// How long an error answer's body may be in a message.
const BODY_SHOWN: usize = 300;

/// What a request came to: delivered (2xx); worth retrying (no answer, a 5xx, 408 or
/// 429); refused for good (any other answer). `what` names the receiver
/// ("Alertmanager"), `shown` is its [`masked`] URL. Error text never holds the URL
/// (it may carry a secret) and shows the body's control characters escaped, so a body
/// cannot forge log lines.
pub async fn outcome(
    what: &str,
    shown: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<(), SinkError> {
    let response =
        sent.map_err(|e| SinkError::retry(format!("{what} at {shown} unreachable: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.trim().chars().take(BODY_SHOWN).collect();
    let message = format!(
        "{what} at {shown} answered {status}: {}",
        crate::text::visible(&body)
    );
    if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
        Err(SinkError::retry(message))
    } else {
        Err(SinkError::permanent(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_url_keeps_no_secret() {
        assert_eq!(masked("https://hc-ping.com/5f3c-uuid"), "https://hc-ping.com/…");
        assert_eq!(
            masked("http://user:pa55@am.desk:9093/?token=s3cret"),
            "http://am.desk:9093/…"
        );
        assert_eq!(masked("http://127.0.0.1:9093"), "http://127.0.0.1:9093");
        assert_eq!(masked("http://127.0.0.1:9093/"), "http://127.0.0.1:9093");
        for url in ["https://a:b@h/x?y=z", "http://h?token=t", "http://h#f"] {
            let m = masked(url);
            assert!(
                !m.contains(['@', '?', '#']) && !m.contains("token"),
                "{url} -> {m}"
            );
        }
    }

    #[test]
    fn a_joined_path_keeps_the_query() {
        assert_eq!(
            join("http://am:9093/prefix?token=x", "/api/v2/alerts"),
            "http://am:9093/prefix/api/v2/alerts?token=x"
        );
        assert_eq!(
            join("http://am:9093/", "/api/v2/alerts"),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(
            join("http://am:9093", "api/v2/alerts"),
            "http://am:9093/api/v2/alerts"
        );
    }
}
