//! The host functions offered to components: the world's `host` interface (`log`, `notify`,
//! `rpc`, `config`), on the same code paths, rate limits and grants as ABI v1's `wasmrpc.log`,
//! `wasmrpc.notify`, `wasmrpc.rpc` and `wasmrpc.config` (host_api.rs), plus WASI preview 2.

use wasmrpc_abi::{LogLevel, NOTIFY_DENIED, NOTIFY_INVALID, NotifyRequest};
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Lower};

use super::host_api::{
    MAX_CONFIG_KEY, MAX_NOTIFICATION, MAX_RPC_REQUEST, MAX_TEXT, log, notify, outbound, too_large_request,
};
use super::store::{StoreState, WasiP2};

/// The interface the world imports.
const HOST_INTERFACE: &str = "wasmrpc:endpoint/host@1.0.0";

/// `host.level`.
#[derive(ComponentType, Lift, Clone, Copy, Debug)]
#[component(enum)]
#[repr(u8)]
#[allow(dead_code, reason = "made by lifting the guest's value, never by name")]
enum Level {
    #[component(name = "trace")]
    Trace,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
}

/// `host.priority`.
#[derive(ComponentType, Lift, Clone, Copy, Debug)]
#[component(enum)]
#[repr(u8)]
#[allow(dead_code, reason = "made by lifting the guest's value, never by name")]
enum Priority {
    #[component(name = "audit")]
    Audit,
    #[component(name = "debug")]
    Debug,
    #[component(name = "info")]
    Info,
    #[component(name = "warn")]
    Warn,
    #[component(name = "error")]
    Error,
    #[component(name = "critical")]
    Critical,
    #[component(name = "sample")]
    Sample,
}

/// `host.notify-error`.
#[derive(ComponentType, Lower, Clone, Copy, Debug)]
#[component(enum)]
#[repr(u8)]
enum NotifyError {
    #[component(name = "denied")]
    Denied,
    #[component(name = "invalid")]
    Invalid,
}

type State = StoreState<WasiP2>;

/// The linker every component is instantiated with: WASI preview 2 (async, like the core
/// modules' preview 1: a guest waiting in WASI holds no host thread) and the `host` interface.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker: Linker<State> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let mut host = linker.instance(HOST_INTERFACE)?;
    host.func_wrap("log", |store: StoreContextMut<'_, State>, (level, message): (Level, String)| {
        let guest = &store.data().guest;
        if guest.rates.log_line() {
            // The same cut as ABI v1's: one line cannot flood the log.
            let text = cut(&message, MAX_TEXT as usize);
            log(guest, level.into(), text);
        }
        Ok(())
    })?;
    host.func_wrap(
        "notify",
        |store: StoreContextMut<'_, State>,
         (priority, event_type, payload, context): (Priority, String, String, String)| {
            Ok((notify_from_component(store.data(), priority, event_type, &payload, &context),))
        },
    )?;
    // Async, as ABI v1's: the guest is suspended while the call is out, holding no host thread,
    // and the call's deadline timer can drop it there.
    host.func_wrap_async("rpc", |store: StoreContextMut<'_, State>, (request,): (String,)| {
        let (services, deadline) = (store.data().guest.services.clone(), store.data().deadline);
        Box::new(async move {
            let response = if request.len() > MAX_RPC_REQUEST as usize {
                too_large_request()
            } else {
                outbound(services, deadline, request.as_bytes()).await
            };
            Ok((serde_json::to_string(&response)?,))
        })
    })?;
    host.func_wrap("config", |store: StoreContextMut<'_, State>, (key,): (String,)| {
        if key.len() > MAX_CONFIG_KEY as usize {
            return Ok((None,));
        }
        let services = store.data().guest.services.as_ref();
        Ok((services.and_then(|s| s.config(&key).map(str::to_owned)),))
    })?;
    Ok(linker)
}

/// `host.notify`: the request ABI v1's guests send as JSON, built from the typed arguments,
/// then the same grant check, rate limit and notifier.
fn notify_from_component(
    state: &State,
    priority: Priority,
    event_type: String,
    payload: &str,
    context: &str,
) -> Result<(), NotifyError> {
    if payload.len() + context.len() > MAX_NOTIFICATION as usize {
        return Err(NotifyError::Invalid);
    }
    let payload = serde_json::from_str(payload).map_err(|_| NotifyError::Invalid)?;
    let context = serde_json::from_str(context).map_err(|_| NotifyError::Invalid)?;
    let request = NotifyRequest { priority: priority.name().to_owned(), event_type, payload, context };
    let guest = &state.guest;
    let (status, outcome) = notify(guest, request);
    guest.stats.record_notification(outcome);
    match status {
        NOTIFY_DENIED => Err(NotifyError::Denied),
        NOTIFY_INVALID => Err(NotifyError::Invalid),
        // Sent, or dropped by the rate limit or a full queue: the world has no error for
        // those, as oslo's own notifier does not tell its caller either.
        _ => Ok(()),
    }
}

impl From<Level> for LogLevel {
    fn from(level: Level) -> LogLevel {
        match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

impl Priority {
    /// The name oslo's notifier gives it.
    fn name(self) -> &'static str {
        match self {
            Priority::Audit => "audit",
            Priority::Debug => "debug",
            Priority::Info => "info",
            Priority::Warn => "warn",
            Priority::Error => "error",
            Priority::Critical => "critical",
            Priority::Sample => "sample",
        }
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
