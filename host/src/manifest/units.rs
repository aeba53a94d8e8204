//! Sizes (`"64MiB"`) and durations (`"30s"`) as written in manifests and host configs. The
//! `bytesize` and `humantime` crates do the parsing; this module names what went wrong.

use std::time::Duration;

/// A size or a duration that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// Not a number of bytes, nor a number with a known unit.
    #[error("invalid size {text:?}: write a number of bytes or a number with a unit (B, KiB, MiB, GiB, KB, MB, GB)")]
    Size {
        /// The text as written.
        text: String,
    },
    /// Not a duration with units.
    #[error("invalid duration {text:?} ({source}): write e.g. \"30s\", \"500ms\", \"2m\" or \"1h\"")]
    Duration {
        /// The text as written.
        text: String,
        /// What humantime found wrong.
        source: humantime::DurationError,
    },
    /// A number of seconds that is negative, not finite or too large.
    #[error("invalid duration of {seconds} seconds: {source}")]
    Seconds {
        /// The number as written.
        seconds: f64,
        /// Why it is not a duration.
        source: std::time::TryFromFloatSecsError,
    },
}

/// Parses `"64MiB"`, `"512 KiB"`, `"1.5GiB"`, `"100MB"` or a plain number of bytes (units are
/// case-insensitive; `KB`, `MB`, `GB` are powers of 1000).
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| UnitError::Size { text: text.to_owned() })
}

/// Parses `"30s"`, `"500ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"1h 30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    humantime::parse_duration(text.trim()).map_err(|source| UnitError::Duration { text: text.to_owned(), source })
}

/// A duration written as a number of seconds.
pub fn from_seconds(seconds: f64) -> Result<Duration, UnitError> {
    Duration::try_from_secs_f64(seconds).map_err(|source| UnitError::Seconds { seconds, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("100MB").unwrap(), 100_000_000);
        assert_eq!(parse_size("2kB").unwrap(), 2000);
        let e = parse_size("64 megs").unwrap_err();
        assert!(matches!(&e, UnitError::Size { text } if text == "64 megs"), "{e:?}");
        assert!(e.to_string().contains("KiB, MiB, GiB"), "{e}");
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        let e = parse_duration("soon").unwrap_err();
        assert!(matches!(&e, UnitError::Duration { text, .. } if text == "soon"), "{e:?}");
        assert!(e.to_string().contains("\"30s\""), "{e}");
        assert!(matches!(from_seconds(-1.0), Err(UnitError::Seconds { .. })));
        assert_eq!(from_seconds(0.5).unwrap(), Duration::from_millis(500));
    }
}
