//! The registries of plugin kinds (check kinds, sink kinds). Each kind registers
//! itself from its own file with [`register_check!`](crate::register_check) or
//! [`register_sink!`](crate::register_sink); nothing central lists them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::check::{BuildContext, BuildError, Check, CheckConfig, KeyError};
use crate::schema::{KeyDoc, keys_of};

/// Any kind's config after parsing, seen without its type.
pub trait ParsedComponent: fmt::Debug + Send + Sync {
    /// Pure validation (see [`CheckConfig::validate`]).
    fn validate(&self) -> Vec<KeyError>;
    /// The config as JSON, for fingerprinting (reload keeps unchanged parts running).
    fn to_json(&self) -> serde_json::Value;
}

/// A check kind's config after parsing: validated or built without knowing its type.
pub trait ParsedCheck: ParsedComponent {
    /// See [`CheckConfig::build`].
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError>;
}

impl<C: CheckConfig> ParsedComponent for C {
    fn validate(&self) -> Vec<KeyError> {
        CheckConfig::validate(self)
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

impl<C: CheckConfig> ParsedCheck for C {
    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        CheckConfig::build(self, cx)
    }
}

/// What the registry and the config loader need of a registered kind.
pub trait Kind: Sync + 'static {
    /// "check kind", "sink kind": for messages.
    const NOUN: &'static str;
    /// The parsed config, type-erased.
    type Parsed: ?Sized + ParsedComponent;
    /// `kind = "…"`.
    fn name(&self) -> &'static str;
    /// `file:line` of the registration.
    fn location(&self) -> String;
    /// Parses the kind's own keys.
    fn parse(&self, de: toml::de::ValueDeserializer<'_>) -> Result<Box<Self::Parsed>, toml::de::Error>;
    /// Documents the kind's own keys.
    fn keys(&self) -> Vec<KeyDoc>;
}

/// The parser of one kind: deserializes the kind's own keys from a spanned TOML table.
pub type ParseFn =
    for<'i> fn(toml::de::ValueDeserializer<'i>) -> Result<Box<dyn ParsedCheck>, toml::de::Error>;

/// One registered check kind.
pub struct CheckKind {
    /// `kind = "…"`.
    pub name: &'static str,
    /// One line saying what it watches.
    pub summary: &'static str,
    /// The value's unit.
    pub unit: &'static str,
    /// Example keys (see [`CheckConfig::EXAMPLE`]).
    pub example: &'static str,
    /// Where it was registered (for duplicate errors).
    pub file: &'static str,
    /// Line of the registration.
    pub line: u32,
    /// Parses the kind's keys.
    pub parse: ParseFn,
    /// Documents the kind's keys.
    pub keys: fn() -> Vec<KeyDoc>,
}

impl CheckKind {
    /// The registration of `C`, made in a `const` context by [`register_check!`](crate::register_check).
    pub const fn of<C: CheckConfig>(file: &'static str, line: u32) -> CheckKind {
        CheckKind {
            name: C::KIND,
            summary: C::SUMMARY,
            unit: C::UNIT,
            example: C::EXAMPLE,
            file,
            line,
            parse: parse_as::<C>,
            keys: keys_of::<C>,
        }
    }
}

fn parse_as<C: CheckConfig>(
    de: toml::de::ValueDeserializer<'_>,
) -> Result<Box<dyn ParsedCheck>, toml::de::Error> {
    let config: C = serde::Deserialize::deserialize(de)?;
    Ok(Box::new(config))
}

/// `file:line`, relative to the crate.
pub(crate) fn location(file: &str, line: u32) -> String {
    format!("{}:{}", file.trim_start_matches("src/../"), line)
}

impl CheckKind {
    /// `file:line` of the registration, relative to the crate.
    pub fn location(&self) -> String {
        location(self.file, self.line)
    }
}

impl Kind for CheckKind {
    const NOUN: &'static str = "check kind";
    type Parsed = dyn ParsedCheck;
    fn name(&self) -> &'static str {
        self.name
    }
    fn location(&self) -> String {
        CheckKind::location(self)
    }
    fn parse(&self, de: toml::de::ValueDeserializer<'_>) -> Result<Box<dyn ParsedCheck>, toml::de::Error> {
        (self.parse)(de)
    }
    fn keys(&self) -> Vec<KeyDoc> {
        (self.keys)()
    }
}

impl fmt::Debug for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckKind({} at {})", self.name, self.location())
    }
}

inventory::collect!(CheckKind);

/// Registers a check kind from its own file: `vitals::register_check!(CpuConfig);`
#[macro_export]
macro_rules! register_check {
    ($config:ty) => {
        $crate::inventory::submit! {
            $crate::plugin::CheckKind::of::<$config>(file!(), line!())
        }
    };
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

/// All registered kinds of one sort, by name.
#[derive(Debug)]
pub struct Kinds<K: 'static> {
    kinds: BTreeMap<&'static str, &'static K>,
}

/// The check kinds.
pub type Registry = Kinds<CheckKind>;

impl<K: Kind> Kinds<K> {
    /// Builds a registry, refusing two kinds with one name.
    pub fn from_kinds(kinds: impl IntoIterator<Item = &'static K>) -> Result<Self, DuplicateKind> {
        let mut map: BTreeMap<&'static str, &'static K> = BTreeMap::new();
        for kind in kinds {
            if let Some(prev) = map.insert(kind.name(), kind) {
                let mut places = [prev.location(), kind.location()];
                places.sort();
                let [first, second] = places;
                return Err(DuplicateKind {
                    noun: K::NOUN,
                    name: kind.name(),
                    first,
                    second,
                });
            }
        }
        Ok(Kinds { kinds: map })
    }

    /// The kind called `name`.
    pub fn get(&self, name: &str) -> Option<&'static K> {
        self.kinds.get(name).copied()
    }

    /// All kinds, sorted by name.
    pub fn kinds(&self) -> impl Iterator<Item = &'static K> + '_ {
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

/// The registry of every check kind linked into this binary.
pub fn registry() -> Result<&'static Registry, DuplicateKind> {
    static REGISTRY: OnceLock<Result<Registry, DuplicateKind>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Registry::from_kinds(inventory::iter::<CheckKind>))
        .as_ref()
        .map_err(Clone::clone)
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
