//! The registry machinery every plugin family shares (check kinds, sink kinds): one
//! [`Registration`] type, one [`Kinds`] registry, the errors a component's config can
//! produce ([`KeyError`], [`BuildError`]) and the "did you mean" suffix of every
//! "unknown …" message. A family ([`crate::check::Checks`], [`crate::sinks::Sinks`])
//! says what its parsed configs are and what else a registration carries; each kind
//! registers itself from its own file with [`register_check!`](crate::register_check)
//! or [`register_sink!`](crate::register_sink). Nothing central lists the kinds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::schema::KeyDoc;

/// Any component's config after parsing, seen without its type.
pub trait ParsedComponent: fmt::Debug + Send + Sync {
    /// Pure validation: no I/O, no await. Every problem found, each at its key.
    fn validate(&self) -> Vec<KeyError>;
    /// The config as JSON, for fingerprinting (reload keeps unchanged parts running).
    fn to_json(&self) -> serde_json::Value;
}

/// A family of plugins: check kinds or sink kinds.
pub trait Family: Sized + 'static {
    /// "check kind", "sink kind": for messages.
    const NOUN: &'static str;
    /// A parsed config of this family, type-erased (e.g. `dyn ParsedCheck`).
    type Parsed: ?Sized + ParsedComponent;
    /// What a registration of this family carries beyond the common fields (the page
    /// panel of a check kind; nothing for sinks).
    type Extra: Sync + 'static;
}

/// The parser of one kind: deserializes the kind's own keys from a spanned TOML table.
pub type ParseFn<F> =
    for<'i> fn(toml::de::ValueDeserializer<'i>) -> Result<Box<<F as Family>::Parsed>, toml::de::Error>;

/// One registered kind of family `F`, made in a `const` context by the family's
/// registration macro.
pub struct Registration<F: Family> {
    /// `kind = "…"`.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// The value's unit (checks; empty for sinks).
    pub unit: &'static str,
    /// A complete example of the kind's own keys (parsed and validated by a test).
    pub example: &'static str,
    /// Where it was registered (`file!()`), for duplicate errors.
    pub file: &'static str,
    /// Line of the registration.
    pub line: u32,
    /// Parses the kind's keys.
    pub parse: ParseFn<F>,
    /// Documents the kind's keys.
    pub keys: fn() -> Vec<KeyDoc>,
    /// What the family adds.
    pub extra: F::Extra,
}

impl<F: Family> Registration<F> {
    /// `file:line` of the registration, relative to the crate (`checks/cpu.rs:40`;
    /// `file!()` of a kind under `checks/` reads `src/../checks/…`).
    pub fn location(&self) -> String {
        let file = self.file.strip_prefix("src/../").unwrap_or(self.file);
        format!("{file}:{}", self.line)
    }
}

impl<F: Family> fmt::Debug for Registration<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Registration({} {} at {})",
            F::NOUN,
            self.name,
            self.location()
        )
    }
}

/// Two registrations with one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{noun} `{name}` is registered twice: at {first} and at {second}")]
pub struct DuplicateKind {
    /// "check kind" or "sink kind".
    pub noun: &'static str,
    /// The name both use.
    pub name: &'static str,
    /// `file:line` of one.
    pub first: String,
    /// `file:line` of the other.
    pub second: String,
}

/// All registered kinds of one family, by name.
pub struct Kinds<F: Family> {
    kinds: BTreeMap<&'static str, &'static Registration<F>>,
}

impl<F: Family> fmt::Debug for Kinds<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kinds<{}>({})", F::NOUN, self.names().join(", "))
    }
}

impl<F: Family> Kinds<F> {
    /// Builds a registry, refusing two kinds with one name.
    pub fn from_kinds(
        kinds: impl IntoIterator<Item = &'static Registration<F>>,
    ) -> Result<Self, DuplicateKind> {
        let mut map: BTreeMap<&'static str, &'static Registration<F>> = BTreeMap::new();
        for kind in kinds {
            if let Some(prev) = map.insert(kind.name, kind) {
                let mut places = [prev.location(), kind.location()];
                places.sort();
                let [first, second] = places;
                return Err(DuplicateKind {
                    noun: F::NOUN,
                    name: kind.name,
                    first,
                    second,
                });
            }
        }
        Ok(Kinds { kinds: map })
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&'static Registration<F>> {
        self.kinds.get(name).copied()
    }

    /// All kinds, sorted by name.
    pub fn kinds(&self) -> impl Iterator<Item = &'static Registration<F>> + '_ {
        self.kinds.values().copied()
    }

    /// What to add after naming an unknown kind: the closest registered one, and all.
    pub fn unknown_kind_hint(&self, kind: &str) -> String {
        let names = self.names();
        format!(
            "{}; registered kinds: {}",
            suggest(kind, names.iter().copied()),
            names.join(", ")
        )
    }

    /// All names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }
}

/// A config-level problem with one key of a component (from its `validate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key it is about, as written in the TOML.
    pub key: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl KeyError {
    /// A problem with `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Why building a component (a check or a sink) failed. A check whose build fails is
/// reported `unknown` with this message on every run; a sink keeps the message and
/// reports it on every delivery attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BuildError {
    /// A key's value, valid in form, cannot be used (an address that does not parse…).
    #[error("{key}: {message}")]
    Key {
        /// The key, as written in the TOML.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An environment variable the config names is not set.
    #[error("the {what} variable ${var} is not set")]
    MissingEnv {
        /// What it should hold ("SMTP password").
        what: &'static str,
        /// Its name.
        var: String,
    },
    /// A file the config names cannot be read.
    #[error("cannot read {key} {}: {source}", path.display())]
    Read {
        /// The key naming the file.
        key: &'static str,
        /// The file, resolved.
        path: PathBuf,
        /// Why.
        source: Arc<std::io::Error>,
    },
    /// A library the component needs refused to set up (TLS, an HTTP client, a
    /// template).
    #[error("{what}: {message}")]
    Setup {
        /// What was being set up.
        what: String,
        /// The library's error.
        message: String,
    },
    /// The component needs something of its surroundings that is missing (e.g. a tokio
    /// runtime).
    #[error("{0}")]
    Environment(&'static str),
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// " (did you mean `best`?)" when one of `candidates` is a likely typo of `word`, else
/// nothing: the suffix every "unknown …" message carries.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|best| format!(" (did you mean `{best}`?)"))
        .unwrap_or_default()
}

/// A kind as listed by `vitals plugins` and the docs.
#[derive(Debug, Serialize)]
pub struct KindDoc {
    /// Name.
    pub name: &'static str,
    /// What it watches.
    pub summary: &'static str,
    /// Its keys.
    pub keys: Vec<KeyDoc>,
}

/// The number `N` as any numeric type, for serde defaults:
/// `#[serde(default = "crate::plugin::num::<4002, u16>")]` (the key's documented default
/// comes from the same attribute).
pub fn num<const N: u16, T: From<u16>>() -> T {
    T::from(N)
}

/// Whether `id` may name a component (`[checks.<id>]`, `[sinks.<id>]`) or a rule: it
/// appears in URLs, metrics and file names, so letters, digits, `_` and `-` only.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

/// Resolves a path from the config: absolute as is, relative against the config file's
/// directory. The one rule for every path key.
pub fn resolve_path(config_dir: &std::path::Path, path: &std::path::Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        config_dir.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_allow_urls_and_file_names_only() {
        assert!(valid_id("positions_fresh-2"));
        for bad in ["", "a b", "a/b", "a.b", "é"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn suggestions_name_a_close_word_only() {
        assert_eq!(
            suggest("delta_fresness", ["delta_freshness", "cpu"]),
            " (did you mean `delta_freshness`?)"
        );
        assert_eq!(suggest("zzz", ["delta_freshness", "cpu"]), "");
    }
}
