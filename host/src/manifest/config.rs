//! `[config]`: the values a guest reads through the host, as the manifest writes them: a
//! literal, or a reference to an environment variable or a file, resolved by the host when the
//! endpoint loads. A value marked `secret` is a [`Secret`] once resolved, and never printed.

use std::fmt;
use std::path::PathBuf;

use super::Location;

/// One `[config]` key.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The key the guest asks for.
    pub key: String,
    /// Where its value comes from.
    pub source: ConfigSource,
    /// Never logged, listed or put in an error message.
    pub secret: bool,
    /// Where the key is written, for errors found when it is resolved.
    pub at: Location,
}

/// Where a configuration value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The value written in the manifest (numbers and booleans as their TOML text).
    Literal(String),
    /// `{ env = "NAME" }`: the host's environment variable, read at load.
    Env(String),
    /// `{ file = "path" }`: the file's content (absolute path), read at load; a change to the
    /// file reloads the endpoint.
    File(PathBuf),
}

/// A literal's text is left out: whether it is secret is the entry's to say.
impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Literal(_) => f.write_str("Literal(..)"),
            ConfigSource::Env(name) => f.debug_tuple("Env").field(name).finish(),
            ConfigSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// A literal marked secret prints as `[secret]`, like a resolved [`Secret`].
impl fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source: &dyn fmt::Debug = match &self.source {
            ConfigSource::Literal(_) if self.secret => &"[secret]",
            ConfigSource::Literal(v) => v,
            ConfigSource::Env(name) => name,
            ConfigSource::File(path) => path,
        };
        let kind = match self.source {
            ConfigSource::Literal(_) => "literal",
            ConfigSource::Env(_) => "env",
            ConfigSource::File(_) => "file",
        };
        f.debug_struct("ConfigEntry").field("key", &self.key).field(kind, source).field("secret", &self.secret).finish()
    }
}

/// A value that must not be shown: its `Debug` and `Display` print `[secret]`; only
/// [`Secret::expose`] gives the text, for the guest that asked for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!((format!("{s}"), format!("{s:?}"), s.expose()), ("[secret]".into(), "[secret]".into(), "hunter2"));
        let entry = ConfigEntry {
            key: "password".into(),
            source: ConfigSource::Literal("hunter2".into()),
            secret: true,
            at: Location::default(),
        };
        assert!(!format!("{entry:?}").contains("hunter2"), "{entry:?}");
        let open = ConfigEntry { secret: false, ..entry };
        assert!(format!("{open:?}").contains("hunter2"));
    }
}
