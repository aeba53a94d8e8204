//! JSON exactly as Python's `json.dumps` writes it, and a reader that accepts what it may write.
//!
//! oslo.messaging encodes with the defaults of `json.dumps`: separators `", "` and `": "`,
//! `ensure_ascii=True` (so non-ASCII becomes `\uXXXX`), floats as `repr()` writes them
//! (`1e-05`, `1e+16`, `1.0`), and `allow_nan=True`, so a Python peer may send bare `NaN`,
//! `Infinity` and `-Infinity`, which strict JSON readers refuse.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use serde_json::{Map, Value};

/// Serializes `value` byte for byte as Python's `json.dumps(value)` would.
pub fn to_python_string<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(128);
    write_with(&mut out, PythonFormatter, value);
    // The formatter only writes ASCII.
    String::from_utf8(out).expect("ASCII output")
}

/// Serializes `value` with `formatter` into memory (which cannot fail).
pub(crate) fn write_with<F: Formatter, T: Serialize + ?Sized>(out: &mut Vec<u8>, formatter: F, value: &T) {
    let mut ser = Serializer::with_formatter(out, formatter);
    value.serialize(&mut ser).expect("JSON serialization into memory");
}

/// Parses JSON text from a Python peer. Bare `NaN`, `Infinity` and `-Infinity` (which
/// `json.dumps` writes for those floats) become `null`, because a JSON value cannot hold them;
/// everything else must be standard JSON.
pub fn from_python_str(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(e) if text.contains("NaN") || text.contains("Infinity") => {
            serde_json::from_str(&replace_non_finite(text)).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Why text is not the JSON object [`object_from_python_str`] expected.
#[derive(Debug, thiserror::Error)]
pub enum NotAnObject {
    /// Not JSON at all.
    #[error(transparent)]
    Syntax(#[from] serde_json::Error),
    /// JSON, but another kind of value.
    #[error("expected a JSON object, found {found}")]
    OtherValue {
        /// What it is instead: `a string`, `an array`, ….
        found: &'static str,
    },
}

/// Parses a JSON object (see [`from_python_str`]).
pub fn object_from_python_str(text: &str) -> Result<Map<String, Value>, NotAnObject> {
    match from_python_str(text)? {
        Value::Object(map) => Ok(map),
        other => Err(NotAnObject::OtherValue { found: kind(&other) }),
    }
}

/// What kind of JSON value `v` is, for messages ("an array", "a number"...).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Replaces the tokens `NaN`, `Infinity`, `-Infinity` outside strings with `null`.
fn replace_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut in_string = false;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match c {
                '\\' => {
                    let escaped: String = rest.chars().take(2).collect();
                    out.push_str(&escaped);
                    rest = &rest[escaped.len()..];
                    continue;
                }
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else {
            let token = ["-Infinity", "Infinity", "NaN"].into_iter().find(|t| rest.starts_with(t));
            if let Some(t) = token {
                out.push_str("null");
                rest = &rest[t.len()..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `json.dumps` defaults as a serde_json formatter.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        write_ascii(w, fragment, "\\")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        w.write_all(python_float_repr(f64::from(value)).as_bytes())
    }
}

/// Writes a string fragment as `ensure_ascii` does: everything outside ' '..='~' (DEL
/// included) as `\uXXXX` UTF-16 units, each escape starting with `backslash`.
fn write_ascii<W: ?Sized + io::Write>(w: &mut W, fragment: &str, backslash: &str) -> io::Result<()> {
    if fragment.bytes().all(|b| b < 0x7f) {
        return w.write_all(fragment.as_bytes());
    }
    let mut units = [0u16; 2];
    for c in fragment.chars() {
        if c < '\x7f' {
            w.write_all(&[c as u8])?;
        } else {
            for unit in c.encode_utf16(&mut units) {
                write!(w, "{backslash}u{unit:04x}")?;
            }
        }
    }
    Ok(())
}

/// [`PythonFormatter`]'s output as it appears inside a JSON string: the bytes `json.dumps`
/// writes for `json.dumps(value)` nested in another document. oslo's 2.0 envelope is exactly
/// that, so this writes an envelope's inner message in one pass, with no text to escape
/// afterwards. Every escape gains a backslash; everything else is printable ASCII with no `"`
/// or `\\` (those only ever come through `write_char_escape`), so it needs none.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct QuotedPythonFormatter;

impl Formatter for QuotedPythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        PythonFormatter.begin_array_value(w, first)
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        PythonFormatter.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        PythonFormatter.begin_object_value(w)
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\\\"")
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\\\"")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        write_ascii(w, fragment, "\\\\")
    }

    fn write_char_escape<W: ?Sized + io::Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        // Inner `\"` is outer `\\\"`, inner `\\` is outer `\\\\`, inner `\n` is outer `\\n`.
        let mut buf = [0u8; 6];
        let mut rest = &mut buf[..];
        PythonFormatter.write_char_escape(&mut rest, escape)?;
        let written = 6 - rest.len();
        for &b in &buf[..written] {
            match b {
                b'"' => w.write_all(b"\\\"")?,
                b'\\' => w.write_all(b"\\\\")?,
                _ => w.write_all(&[b])?,
            }
        }
        Ok(())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        PythonFormatter.write_f64(w, value)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        PythonFormatter.write_f32(w, value)
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation when the
/// decimal exponent is in [-4, 16), otherwise as `d.ddde±XX`.
#[must_use]
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e17", "-1e-5".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_owned() } else { format!("{first}.{rest}") };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (100.0, "100.0"),
            (0.5, "0.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (-2.5e-7, "-2.5e-07"),
            (1.5e300, "1.5e+300"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
            (2.75, "2.75"),
        ];
        for (v, expected) in cases {
            assert_eq!(python_float_repr(v), expected, "{v:e}");
        }
    }

    #[test]
    fn output_matches_json_dumps_defaults() {
        let v = json!({"a": [1, 2.0, "é☃𝄞"], "b": {"c": null, "d": true}, "e": "q\"\\\n\t\u{1}\u{7f}"});
        assert_eq!(
            to_python_string(&v),
            r#"{"a": [1, 2.0, "\u00e9\u2603\ud834\udd1e"], "b": {"c": null, "d": true}, "e": "q\"\\\n\t\u0001\u007f"}"#
        );
    }

    #[test]
    fn non_finite_floats_from_python_are_read_as_null() {
        let v = from_python_str(r#"{"a": NaN, "b": [Infinity, -Infinity], "s": "NaN and Infinity stay"}"#).unwrap();
        assert_eq!(v, json!({"a": null, "b": [null, null], "s": "NaN and Infinity stay"}));
        assert!(from_python_str("{\"a\": nan}").is_err());
        let escaped = from_python_str(r#"{"s": "quote \" NaN", "n": NaN}"#).unwrap();
        assert_eq!(escaped, json!({"s": "quote \" NaN", "n": null}));
    }
}
