//! The secret policy: no check passes a plugin an environment variable that the
//! config names as holding one of vitals' secrets.

use toml::Spanned;
use toml::de::DeValue;

use super::diag::Collector;
use super::{CheckSpec, ServerConfig, SinkSpec};

/// The variables the config names as holding a secret: `[server] token_env`,
/// `read_token_env`, and what every sink and check says it reads a secret from
/// ([`crate::sinks::SinkConfig::secret_env`], [`crate::check::CheckConfig::secret_env`]).
pub fn secret_variables(server: &ServerConfig, sinks: &[SinkSpec], checks: &[CheckSpec]) -> Vec<String> {
    let mut secrets = vec![server.token_env.clone()];
    secrets.extend(server.read_token_env.clone());
    for sink in sinks {
        secrets.extend(sink.params.secret_env());
    }
    for check in checks {
        secrets.extend(check.params.secret_env());
    }
    secrets
}

/// Refuses, at its `env_passthrough` key (or whichever key the kind reads it from), a
/// check that would pass a plugin one of [`secret_variables`].
pub(super) fn refuse_passthrough(
    c: &mut Collector,
    secrets: &[String],
    checks: &[CheckSpec],
    tables: &[(&Spanned<std::borrow::Cow<'_, str>>, &Spanned<DeValue<'_>>)],
) {
    for check in checks {
        for name in check.params.passes_env() {
            if secrets.contains(&name) {
                let span = tables
                    .iter()
                    .find(|(id, _)| id.get_ref().as_ref() == check.id)
                    .and_then(|(_, t)| t.get_ref().as_table()?.get("env_passthrough").map(Spanned::span));
                c.error(
                    span,
                    Some(&format!("checks.{}", check.id)),
                    Some("env_passthrough"),
                    format!("`{name}` holds a secret of vitals' (another key of this config names it): it is never passed to a plugin"),
                );
            }
        }
    }
}
