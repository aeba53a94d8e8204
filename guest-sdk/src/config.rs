//! The endpoint's configuration: the manifest's `[config]` table, resolved by the host when the
//! endpoint loads.
//!
//! ```toml
//! [config]
//! region = "eu-west"                                     # a literal
//! db_password = { env = "DB_PASSWORD", secret = true }   # the host's environment variable
//! ca = { file = "ca.pem" }                               # a file's content, relative to the manifest
//! ```
//!
//! A changed manifest or referenced file reloads the endpoint, so a value read here is current
//! for the call being handled. Values marked `secret` are never logged or listed by the host;
//! the guest must not log them either.
//!
//! Off wasm (a plugin's own unit tests), [`get`] reads `WASMRPC_CONFIG_<KEY>` from the
//! environment instead.

use crate::host;

/// The value of `key`, or `None` if the manifest does not set it.
#[must_use]
pub fn get(key: &str) -> Option<String> {
    host::config(key)
}
