//! RPC API versions (`"MAJOR.MINOR"` or `"MAJOR.MINOR.REVISION"`) and oslo's compatibility rule.

use std::fmt;
use std::str::FromStr;

/// An RPC API version as oslo.messaging writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes bump this.
    pub major: u32,
    /// Backwards-compatible additions bump this.
    pub minor: u32,
    /// Optional third component (oslo compares it only when the minors are equal).
    pub revision: Option<u32>,
}

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {0:?}: expected \"MAJOR.MINOR\" such as \"1.0\" (or \"MAJOR.MINOR.REVISION\")")]
pub struct InvalidVersion(pub String);

impl Version {
    /// `major.minor`.
    #[must_use]
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor, revision: None }
    }

    /// oslo's `version_is_compatible(self, requested)`: the same major, a requested minor no
    /// higher than ours, and with equal minors a requested revision no higher than ours.
    #[must_use]
    pub fn can_serve(&self, requested: &Version) -> bool {
        if self.major != requested.major || requested.minor > self.minor {
            return false;
        }
        requested.minor != self.minor || requested.revision.unwrap_or(0) <= self.revision.unwrap_or(0)
    }
}

impl FromStr for Version {
    type Err = InvalidVersion;

    fn from_str(s: &str) -> Result<Version, InvalidVersion> {
        // Every request's version is parsed by the dispatcher: one pass over the bytes, no
        // allocation unless it is bad (`str::split` and `u32::from_str` cost several times this).
        let bad = || InvalidVersion(s.to_owned());
        let (mut parts, mut count, mut digits) = ([0u32; 3], 0, 0);
        for b in s.bytes() {
            match b {
                b'0'..=b'9' => {
                    let part = &mut parts[count];
                    *part = part.checked_mul(10).and_then(|p| p.checked_add(u32::from(b - b'0'))).ok_or_else(bad)?;
                    digits += 1;
                }
                b'.' if digits > 0 && count < 2 => (count, digits) = (count + 1, 0),
                _ => return Err(bad()),
            }
        }
        if count == 0 || digits == 0 {
            return Err(bad());
        }
        Ok(Version { major: parts[0], minor: parts[1], revision: (count == 2).then_some(parts[2]) })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if let Some(r) = self.revision {
            write!(f, ".{r}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn compatibility_follows_oslo() {
        assert!(v("1.3").can_serve(&v("1.0")));
        assert!(v("1.3").can_serve(&v("1.3")));
        assert!(!v("1.3").can_serve(&v("1.4")));
        assert!(!v("1.3").can_serve(&v("2.0")));
        assert!(!v("2.0").can_serve(&v("1.0")));
        assert!(v("1.3.2").can_serve(&v("1.3.1")));
        assert!(!v("1.3").can_serve(&v("1.3.1")));
        assert!(v("1.3.1").can_serve(&v("1.2.9")));
    }

    #[test]
    fn malformed_versions_are_refused() {
        for s in ["1", "1.", "a.b", "1.0.0.0", "", "1.-1", " 1.0", ".1", "1..0", "1.0.", "+1.0", "4294967296.0", "1.0 "]
        {
            assert!(s.parse::<Version>().is_err(), "{s:?}");
        }
        assert_eq!(v("1.10").to_string(), "1.10");
        assert_eq!(v("007.01"), Version::new(7, 1));
        assert_eq!(v("0.1.2"), Version { major: 0, minor: 1, revision: Some(2) });
        assert_eq!(v("4294967295.0").major, u32::MAX);
    }
}
