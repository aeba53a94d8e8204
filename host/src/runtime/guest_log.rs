//! A guest's stdout and stderr, as lines in the host's log tagged with the endpoint's name.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::rate::GuestRates;

/// Longest line kept; the rest is cut so one guest cannot fill the log with a single write.
const MAX_LINE: usize = 16 << 10;

/// One of a guest's output streams.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput {
    endpoint: Arc<str>,
    stream: &'static str,
    rates: Arc<GuestRates>,
}

impl GuestOutput {
    pub(crate) fn stdout(endpoint: Arc<str>, rates: Arc<GuestRates>) -> GuestOutput {
        GuestOutput { endpoint, stream: "stdout", rates }
    }

    pub(crate) fn stderr(endpoint: Arc<str>, rates: Arc<GuestRates>) -> GuestOutput {
        GuestOutput { endpoint, stream: "stderr", rates }
    }

    fn writer(&self) -> LineWriter {
        LineWriter {
            endpoint: self.endpoint.clone(),
            stream: self.stream,
            rates: self.rates.clone(),
            pending: Vec::new(),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.writer())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.writer())
    }
}

/// Buffers bytes until a newline, then logs the line.
struct LineWriter {
    endpoint: Arc<str>,
    stream: &'static str,
    rates: Arc<GuestRates>,
    pending: Vec<u8>,
}

impl LineWriter {
    fn push(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            if self.pending.len() < MAX_LINE {
                let room = MAX_LINE - self.pending.len();
                self.pending.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            if chunk.ends_with(b"\n") {
                self.emit();
            }
        }
    }

    fn emit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.rates.log_line() {
            let text = String::from_utf8_lossy(&self.pending);
            let line = text.trim_end_matches(['\n', '\r']);
            tracing::info!(target: "wasmrpc::guest", endpoint = %self.endpoint, stream = self.stream, "{line}");
        }
        self.pending.clear();
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.emit();
    }
}

impl OutputStream for LineWriter {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 << 10)
    }
}

#[async_trait::async_trait]
impl Pollable for LineWriter {
    async fn ready(&mut self) {}
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}
