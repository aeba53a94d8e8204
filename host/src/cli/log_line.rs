//! One event, one log line: the host's log writer escapes every control character an event's
//! text holds (method names, queue names, guest log lines and event types come from outside),
//! so a `\n` or `\r` in them cannot start a line that looks like the host's own.
//!
//! tracing-subscriber's formatter writes each event with one `write_all` of the whole line,
//! ending in `\n`; that last newline is kept and every other control character is written as
//! its escape (`\n`, `\r`, `\u{0}`). ESC is left alone: the formatter's own colours use it,
//! and tracing-subscriber already escapes it (and the other terminal controls) in event text.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// Makes writers that escape control characters inside each event's line.
#[derive(Debug, Clone, Copy)]
pub(super) struct OneLinePerEvent<M>(pub(super) M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLinePerEvent<M> {
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping(self.0.make_writer())
    }
}

/// Writes lines with their inner control characters escaped.
#[derive(Debug)]
pub(super) struct Escaping<W>(W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|&b| escaped(char::from(b))) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(body);
        let mut line = String::with_capacity(text.len() + 16);
        for c in text.chars() {
            if escaped(c) {
                line.extend(c.escape_default());
            } else {
                line.push(c);
            }
        }
        self.0.write_all(line.as_bytes())?;
        self.0.write_all(end)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn escaped(c: char) -> bool {
    c.is_ascii_control() && c != '\t' && c != '\x1b'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_control_characters_are_escaped_and_the_last_newline_kept() {
        let mut out = Vec::new();
        let mut w = Escaping(&mut out);
        w.write_all(b"\x1b[32mINFO\x1b[0m method=a\nFORGED b\r\0\tc\n").unwrap();
        w.write_all(b"plain line\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x1b[32mINFO\x1b[0m method=a\\nFORGED b\\r\\u{0}\tc\nplain line\n"
        );
    }
}
