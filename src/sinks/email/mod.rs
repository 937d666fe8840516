//! `email`: the events of a short window (`group_wait`) as one message over SMTP, so a
//! storm of alerts is one email. Plain-text and HTML bodies from the templates beside
//! this file.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use minijinja::{Environment, context};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Sink, SinkConfig, SinkContext, SinkError, Takes};
use crate::alert::{AlertEvent, AlertState, Severity};
use crate::check::{BuildError, KeyError};
use crate::duration::Span;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text (only for a relay on the same host).
    None,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `kind = "email"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host name.
    pub host: String,
    /// SMTP port (default: 25 with `tls = "none"`, 587 with `"starttls"`, 465 with
    /// `"tls"`).
    #[serde(default)]
    pub port: Option<u16>,
    /// `none`, `starttls` (default) or `tls`.
    #[serde(default)]
    pub tls: TlsMode,
    /// A PEM file with the certificate authority (or the self-signed certificate) the
    /// relay's certificate must chain to, besides the system's roots. Relative paths
    /// resolve against the config file's directory.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept a server certificate that does not verify at all. Off by default; prefer
    /// `ca_file`, and never turn this on for a relay across a network you do not
    /// control.
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// SMTP user name, if the server wants authentication (needs `password_env`).
    #[serde(default)]
    pub username: Option<String>,
    /// Name of the environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Sender, e.g. `"vitals <vitals@desk.example>"`.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Events arriving within this window after the first are sent in one message.
    #[serde(default = "crate::duration::secs::<10>")]
    pub group_wait: Span,
    /// Link to the status page, shown in every message. Unset: `[server] public_url`,
    /// when that is set.
    #[serde(default)]
    pub page_url: Option<String>,
    /// Put in front of every subject.
    #[serde(default = "default_prefix")]
    pub subject_prefix: String,
    /// How long one SMTP conversation may take before it is retried.
    #[serde(default = "crate::duration::secs::<10>")]
    pub timeout: Span,
}

fn default_prefix() -> String {
    "[vitals]".to_owned()
}

impl SinkConfig for EmailConfig {
    const KIND: &'static str = "email";
    const SUMMARY: &'static str = "groups alert events into one email over SMTP (plain text and HTML)";
    const EXAMPLE: &'static str = "host = \"smtp.example.com\"\ntls = \"starttls\"\nusername = \"vitals\"\npassword_env = \"VITALS_SMTP_PASSWORD\"\nfrom = \"vitals <vitals@example.com>\"\nto = [\"desk@example.com\"]\ngroup_wait = \"10s\"\npage_url = \"http://127.0.0.1:8686/\"\n";
    const TAKES: Takes = Takes::Alerts;

    fn secret_env(&self) -> Vec<String> {
        self.password_env.iter().cloned().collect()
    }

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        if self.host.trim().is_empty() {
            errors.push(KeyError::new("host", "must name the SMTP server"));
        }
        if let Err(e) = self.from.parse::<Mailbox>() {
            errors.push(KeyError::new(
                "from",
                format!("{:?} is not an email address: {e}", self.from),
            ));
        }
        if self.to.is_empty() {
            errors.push(KeyError::new("to", "give at least one recipient"));
        }
        for to in &self.to {
            if let Err(e) = to.parse::<Mailbox>() {
                errors.push(KeyError::new(
                    "to",
                    format!("{to:?} is not an email address: {e}"),
                ));
            }
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => errors.push(KeyError::new("password_env", "`username` needs `password_env`")),
            (None, Some(_)) => errors.push(KeyError::new("username", "`password_env` needs `username`")),
            (Some(_), Some(_)) if self.tls == TlsMode::None => errors.push(KeyError::new(
                "tls",
                "credentials would travel in plain text: use tls = \"starttls\" or \"tls\"",
            )),
            _ => {}
        }
        if self.timeout.is_zero() {
            errors.push(KeyError::new("timeout", "must be longer than 0s"));
        }
        errors
    }

    fn build(&self, cx: &SinkContext) -> Result<Arc<dyn Sink>, BuildError> {
        let ca = match &self.ca_file {
            None => None,
            Some(path) => {
                let path = cx.resolve_path(path);
                let pem = std::fs::read(&path).map_err(|e| BuildError::Read {
                    key: "ca_file",
                    path: path.clone(),
                    source: Arc::new(e),
                })?;
                Some(Certificate::from_pem(&pem).map_err(|e| BuildError::Key {
                    key: "ca_file",
                    message: format!("{} is not a PEM certificate: {e}", path.display()),
                })?)
            }
        };
        let tls = || {
            let mut builder = TlsParameters::builder(self.host.clone())
                .dangerous_accept_invalid_certs(self.accept_invalid_certs);
            if let Some(ca) = &ca {
                builder = builder.add_root_certificate(ca.clone());
            }
            builder.build_rustls().map_err(|e| BuildError::Setup {
                what: format!("TLS setup for {}", self.host),
                message: e.to_string(),
            })
        };
        let (tls, port) = match self.tls {
            TlsMode::None => (Tls::None, 25),
            TlsMode::Starttls => (Tls::Required(tls()?), 587),
            TlsMode::Tls => (Tls::Wrapper(tls()?), 465),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.host.clone())
            .port(self.port.unwrap_or(port))
            .tls(tls)
            .timeout(Some(*self.timeout));
        if let (Some(user), Some(var)) = (&self.username, &self.password_env) {
            let password = std::env::var(var).map_err(|_| BuildError::MissingEnv {
                what: "SMTP password",
                var: var.clone(),
            })?;
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let mut templates = Environment::new();
        templates
            .add_template("body.txt", include_str!("body.txt.j2"))
            .and_then(|_| templates.add_template("body.html", include_str!("body.html.j2")))
            .map_err(|e| BuildError::Setup {
                what: "email templates".into(),
                message: e.to_string(),
            })?;
        Ok(Arc::new(Email {
            transport: builder.build(),
            from: self.from.parse().map_err(|e| BuildError::Key {
                key: "from",
                message: format!("{e}"),
            })?,
            to: self
                .to
                .iter()
                .map(|t| {
                    t.parse().map_err(|e| BuildError::Key {
                        key: "to",
                        message: format!("{e}"),
                    })
                })
                .collect::<Result<_, _>>()?,
            group_wait: *self.group_wait,
            page_url: self.page_url.clone().or_else(|| cx.public_url.clone()),
            zone: cx.zone,
            prefix: self.subject_prefix.clone(),
            templates,
            host: cx.name.clone(),
            timeout: *self.timeout,
        }))
    }
}

struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    group_wait: Duration,
    page_url: Option<String>,
    /// The desk's time zone: the times in the message are in it.
    zone: crate::timezone::DeskZone,
    prefix: String,
    templates: Environment<'static>,
    host: String,
    /// The most one SMTP conversation may take, end to end.
    timeout: Duration,
}

/// Short, for a phone's lock screen: "[vitals] FIRING CRITICAL data_stale · positions ·
/// STALE" for one event (the rule, the check, the severity, the check's label; what to
/// do is in the body), counts for several.
pub fn subject(prefix: &str, events: &[AlertEvent]) -> String {
    let count = |s: AlertState| events.iter().filter(|e| e.state == s).count();
    if let [e] = events {
        let what = match e.state {
            AlertState::Firing if e.reminder => "STILL FIRING",
            AlertState::Firing => "FIRING",
            AlertState::Resolved => "RESOLVED",
            AlertState::Acknowledged => "ACKNOWLEDGED",
            AlertState::Action => "ACTION",
        };
        let label = e.label.as_deref().map(|l| format!(" · {l}")).unwrap_or_default();
        return format!(
            "{prefix} {what} {} {} · {}{label}",
            e.severity.as_str(),
            e.rule,
            e.check_id
        );
    }
    let worst = events
        .iter()
        .filter(|e| e.state == AlertState::Firing)
        .map(|e| e.severity)
        .max();
    let mut parts = Vec::new();
    for (state, word) in [
        (AlertState::Firing, "firing"),
        (AlertState::Resolved, "resolved"),
        (AlertState::Acknowledged, "acknowledged"),
    ] {
        let n = count(state);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    match worst {
        Some(w) => format!(
            "{prefix} {} {} alerts: {}",
            w.as_str(),
            events.len(),
            parts.join(", ")
        ),
        None => format!("{prefix} {} alerts: {}", events.len(), parts.join(", ")),
    }
}

fn colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "#b00020",
        Severity::Warning => "#8a5a00",
        Severity::Info => "#1f5fa8",
    }
}

#[async_trait]
impl Sink for Email {
    fn group_wait(&self) -> Duration {
        self.group_wait
    }

    async fn deliver(&self, events: &[AlertEvent]) -> Result<(), SinkError> {
        // Operator actions never reach it (`Takes::Alerts`).
        if events.is_empty() {
            return Ok(());
        }
        let subject = subject(&self.prefix, events);
        let alerts: Vec<_> = events
            .iter()
            .map(|e| {
                context! {
                    state => e.state.as_str(),
                    severity => e.severity.as_str(),
                    colour => colour(e.severity),
                    rule => e.rule,
                    check_id => e.check_id,
                    message => e.message,
                    value => e.value.map_or_else(|| "—".to_owned(), crate::thresholds::fmt_num),
                    started_at => self.zone.date_time(e.started_at),
                    event_at => self.zone.date_time(e.event_at),
                    alert_id => e.alert_id,
                }
            })
            .collect();
        let cx =
            context! { summary => subject, alerts => alerts, page_url => self.page_url, host => self.host };
        let render = |name: &str| {
            self.templates
                .get_template(name)
                .and_then(|t| t.render(&cx))
                .map_err(|e| SinkError::permanent(format!("email template {name}: {e}")))
        };
        let (text, html) = (render("body.txt")?, render("body.html")?);
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| SinkError::permanent(format!("cannot build the email: {e}")))?;
        // The transport's own timeout covers each read and write; a server that
        // answers every line slowly (or holds the final answer) is cut off here, so one
        // conversation never takes longer than `timeout`.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(SinkError::retry(format!(
                "the SMTP server did not finish within {}: slow or hung",
                crate::duration::format(self.timeout)
            ))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.is_permanent() => Err(SinkError::permanent(format!(
                "SMTP server refused the email: {e}"
            ))),
            Ok(Err(e)) => Err(SinkError::retry(format!("SMTP delivery failed: {e}"))),
        }
    }
}

crate::register_sink!(EmailConfig);
