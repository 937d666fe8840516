//! `[server]`: the web server's address, tokens, limits and the names it answers to.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Span;
use crate::plugin::KeyError;

/// `[server]`: the HTTP server (status page, API, metrics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port the web server listens on. Loopback by default: put a reverse
    /// proxy with TLS in front before exposing it.
    pub listen: String,
    /// Name of the environment variable holding the bearer token that `POST` actions
    /// require. When the variable is unset or empty, actions are disabled (403).
    pub token_env: String,
    /// Directory for vitals' own state: alert state (so a restart neither re-sends nor
    /// forgets an alert) and each sink's outbox of undelivered events. Relative paths
    /// resolve against the config file's directory. Unset: `$STATE_DIRECTORY` (set by
    /// systemd's `StateDirectory=`: `/var/lib/vitals` with dist/systemd/vitals.service),
    /// else `state` beside the config file.
    pub state_dir: Option<PathBuf>,
    /// Connections the web server serves at once, so idle or slow clients cannot use
    /// up vitals' file descriptors. At the limit a new connection that sends a request
    /// within 2 s takes the place of the oldest connection that never sent a byte (or
    /// else the oldest, after the answer it is writing): holding every connection open
    /// locks no one out.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long a
    /// keep-alive connection may stay idle: then the server closes it.
    pub header_timeout: Span,
    /// How long writing an answer may wait for the client to read it: a client that
    /// asks for a big answer (the alerts CSV) and never reads it is dropped.
    pub write_timeout: Span,
    /// Host names the web server answers to, besides `localhost`, `127.0.0.1`, `::1`
    /// and the `listen` address: the name a reverse proxy or the desk's browsers use,
    /// e.g. `["vitals.desk.example"]`. Any other `Host` gets 421 on every route, and a
    /// `POST` must come from a page on one of these names (against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Name of an environment variable holding a token that reading needs too: when it
    /// is set and not empty, `/`, `/api/*` and `/metrics` ask for it (HTTP Basic with
    /// any user name, or `Authorization: Bearer`); `/healthz` stays open. For a page
    /// reached beyond loopback without a proxy in front. Unset by default.
    pub read_token_env: Option<String>,
    /// The desk's time zone, an IANA name (`"America/New_York"`): every time on the
    /// page, on `/alerts`, in emails and in the CSV is shown in it, with its
    /// abbreviation ("09:31:05 EST"). Unset: the host's zone. Data (the tables, the JSON
    /// API, the logs) stays in UTC.
    pub timezone: Option<String>,
    /// The URL people reach the page at through a reverse proxy, e.g.
    /// `"https://vitals.desk.example/"`: its host name is answered to like
    /// `allowed_hosts`, and the page's buttons work from it (their `Origin`). A proxy
    /// that rewrites `Host` (nginx's default `proxy_pass`) needs nothing else.
    pub public_url: Option<String>,
    /// This instance's name, e.g. `"engine-1"`: the `host` of its alert events (the
    /// alerts table, emails, Alertmanager's `instance`), of `/api/status` and the page's
    /// header; what a `peer` check on another host shows. Unset: the host name. Give
    /// each vitals of a desk its own (docs/fleet.md).
    pub name: Option<String>,
}

/// The names the web server always answers to.
pub const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl ServerConfig {
    /// The desk's time zone: `timezone`, else the host's.
    pub fn zone(&self) -> crate::timezone::DeskZone {
        self.timezone
            .as_deref()
            .and_then(|n| crate::timezone::DeskZone::parse(n).ok())
            .unwrap_or_else(crate::timezone::DeskZone::host)
    }

    /// This instance's name: `name`, else the host name.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| crate::alert::hostname().to_owned())
    }

    /// Every host name the web server answers to (lowercase, without ports).
    pub fn allowed_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = LOOPBACK_HOSTS.map(str::to_owned).to_vec();
        if let Ok(addr) = self.listen.parse::<std::net::SocketAddr>()
            && !addr.ip().is_unspecified()
        {
            hosts.push(addr.ip().to_string());
        }
        let public = self.public_url.as_deref().and_then(public_host);
        for h in self.allowed_hosts.iter().chain(public.as_ref()) {
            let h = h
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase();
            if !h.is_empty() && !hosts.contains(&h) {
                hosts.push(h);
            }
        }
        hosts
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8686".into(),
            token_env: "VITALS_TOKEN".into(),
            state_dir: None,
            max_connections: 512,
            header_timeout: Span::secs(10),
            write_timeout: Span::secs(30),
            allowed_hosts: Vec::new(),
            read_token_env: None,
            timezone: None,
            public_url: None,
            name: None,
        }
    }
}

impl super::Section for ServerConfig {
    const NAME: &'static str = "server";

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        if let Some(name) = &self.name
            && (name.trim().is_empty()
                || name.len() > 64
                || name.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            errors.push(KeyError::new(
                "name",
                "a name of 1 to 64 characters without spaces, e.g. \"engine-1\"",
            ));
        }
        if let Err(e) = self.listen.parse::<std::net::SocketAddr>() {
            errors.push(KeyError::new(
                "listen",
                format!(
                    "`{}` is not an address and port ({e}); expected e.g. \"127.0.0.1:8686\"",
                    self.listen
                ),
            ));
        }
        if self.max_connections == 0 {
            errors.push(KeyError::new("max_connections", "must be at least 1"));
        }
        if let Some(url) = &self.public_url
            && public_host(url).is_none()
        {
            errors.push(KeyError::new(
                "public_url",
                format!("`{url}` is not a URL: write e.g. \"https://vitals.desk.example/\""),
            ));
        }
        for (key, d) in [
            ("header_timeout", self.header_timeout),
            ("write_timeout", self.write_timeout),
        ] {
            if d.is_zero() {
                errors.push(KeyError::new(key, "must be longer than 0s"));
            } else if *d > std::time::Duration::from_secs(3600) {
                errors.push(KeyError::new(key, "must be at most 1h"));
            }
        }
        if let Some(Err(e)) = self.timezone.as_deref().map(crate::timezone::DeskZone::parse) {
            errors.push(KeyError::new("timezone", e));
        }
        errors
    }
}

/// The host name of a `public_url` (`https://name:port/path` → `name`).
fn public_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let name = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}
