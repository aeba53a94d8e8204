//! The host functions offered to guests: `wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`,
//! `wasmrpc.rpc` and `wasmrpc.config` (docs/abi.md).

use wasmrpc_abi::{
    ALLOC_EXPORT, CONFIG_ABSENT, CONFIG_IMPORT, HOST_MODULE, LOG_IMPORT, LogLevel, NOTIFY_DENIED, NOTIFY_DROPPED,
    NOTIFY_IMPORT, NOTIFY_INVALID, NOTIFY_SENT, NotifyRequest, PANIC_IMPORT, RPC_IMPORT, RpcFailure, RpcFailureKind,
    RpcRequest, RpcResponse, pack,
};
use wasmtime::{Caller, Extern, Linker};

use super::stats::NotificationOutcome;
use super::store::{GuestInfo, StoreState};

/// Longest log line or panic message read from a guest.
pub(super) const MAX_TEXT: u32 = 16 << 10;
/// Largest notification a guest may emit.
pub(super) const MAX_NOTIFICATION: u32 = 1 << 20;
/// Largest outbound request a guest may send (RabbitMQ's default message limit is 16 MiB).
pub(super) const MAX_RPC_REQUEST: u32 = 16 << 20;
/// Longest configuration key.
pub(super) const MAX_CONFIG_KEY: u32 = 1 << 10;

pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        LOG_IMPORT,
        |mut caller: Caller<'_, StoreState>, level: i32, ptr: i32, len: i32| {
            // Checked before reading, so a guest over its rate limit costs no copy.
            if !caller.data().guest.rates.log_line() {
                return Ok(());
            }
            let text = read_text(&mut caller, ptr, len)?;
            log(&caller.data().guest, LogLevel::from_raw(level), &text);
            Ok(())
        },
    )?;
    linker.func_wrap(HOST_MODULE, PANIC_IMPORT, |mut caller: Caller<'_, StoreState>, ptr: i32, len: i32| {
        let text = read_text(&mut caller, ptr, len)?;
        caller.data_mut().panic_message = Some(text);
        Ok(())
    })?;
    linker.func_wrap(HOST_MODULE, NOTIFY_IMPORT, |mut caller: Caller<'_, StoreState>, ptr: i32, len: i32| {
        if len as u32 > MAX_NOTIFICATION {
            return Ok(NOTIFY_INVALID);
        }
        let bytes = read_bytes(&mut caller, ptr, len)?;
        let Ok(request) = serde_json::from_slice::<NotifyRequest>(&bytes) else {
            return Ok(NOTIFY_INVALID);
        };
        let guest = &caller.data().guest;
        let (status, outcome) = notify(guest, request);
        guest.stats.record_notification(outcome);
        Ok(status)
    })?;
    // Async: the guest's fiber is suspended while the call is out, holding no host thread, and
    // the call's deadline timer can drop it there.
    linker.func_wrap_async(HOST_MODULE, RPC_IMPORT, |mut caller: Caller<'_, StoreState>, (ptr, len): (i32, i32)| {
        Box::new(async move {
            let response = rpc(&mut caller, ptr, len).await?;
            let bytes = serde_json::to_vec(&response)?;
            give(&mut caller, &bytes).await
        })
    })?;
    linker.func_wrap_async(
        HOST_MODULE,
        CONFIG_IMPORT,
        |mut caller: Caller<'_, StoreState>, (ptr, len): (i32, i32)| {
            Box::new(async move {
                if len as u32 > MAX_CONFIG_KEY {
                    return Ok(CONFIG_ABSENT);
                }
                let key = String::from_utf8_lossy(&read_bytes(&mut caller, ptr, len)?).into_owned();
                let value = caller.data().guest.services.as_ref().and_then(|s| s.config(&key).map(str::to_owned));
                match value {
                    Some(value) => give(&mut caller, value.as_bytes()).await,
                    None => Ok(CONFIG_ABSENT),
                }
            })
        },
    )?;
    Ok(())
}

/// Writes a guest's log line (its rate limit already checked) at `level`, tagged with its
/// endpoint. Shared by `wasmrpc.log` and the component import `host.log`.
pub(super) fn log(guest: &GuestInfo, level: LogLevel, text: &str) {
    let endpoint = &guest.name;
    match level {
        LogLevel::Trace => tracing::trace!(target: "wasmrpc::guest", %endpoint, "{text}"),
        LogLevel::Debug => tracing::debug!(target: "wasmrpc::guest", %endpoint, "{text}"),
        LogLevel::Info => tracing::info!(target: "wasmrpc::guest", %endpoint, "{text}"),
        LogLevel::Warn => tracing::warn!(target: "wasmrpc::guest", %endpoint, "{text}"),
        LogLevel::Error => tracing::error!(target: "wasmrpc::guest", %endpoint, "{text}"),
    }
}

/// Hands a guest's notification to the notifier if its manifest allows it and its rate limit
/// has room; returns the status the guest gets and what became of it.
/// Shared by `wasmrpc.notify` and the component import `host.notify`.
pub(super) fn notify(guest: &GuestInfo, request: NotifyRequest) -> (i32, NotificationOutcome) {
    if !guest.grant.allows(&request.event_type) {
        // A line the guest causes, so under its log rate limit too.
        if guest.rates.log_line() {
            tracing::warn!(
                endpoint = %guest.name,
                event_type = %request.event_type,
                "notification dropped: the manifest's [notifications] allow list does not include this event type"
            );
        }
        return (NOTIFY_DENIED, NotificationOutcome::Refused);
    }
    if !guest.rates.notification() {
        return (NOTIFY_DROPPED, NotificationOutcome::Dropped);
    }
    let Some(sink) = &guest.notifications else {
        tracing::debug!(endpoint = %guest.name, event_type = %request.event_type, "notification dropped: no notification driver is configured");
        return (NOTIFY_SENT, NotificationOutcome::Dropped);
    };
    if sink.emit(&guest.name, guest.grant.publisher_id.as_deref(), request) {
        (NOTIFY_SENT, NotificationOutcome::Published)
    } else {
        (NOTIFY_DROPPED, NotificationOutcome::Dropped)
    }
}

/// Reads the guest's outbound request and hands it to the host's services.
async fn rpc(caller: &mut Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<RpcResponse> {
    if len as u32 > MAX_RPC_REQUEST {
        return Ok(too_large_request());
    }
    let bytes = read_bytes(caller, ptr, len)?;
    let state = caller.data();
    Ok(outbound(state.guest.services.clone(), state.deadline, &bytes).await)
}

/// An outbound request over [`MAX_RPC_REQUEST`].
pub(super) fn too_large_request() -> RpcResponse {
    RpcResponse::Error(RpcFailure::new(
        RpcFailureKind::InvalidRequest,
        format!("the request is over the {MAX_RPC_REQUEST}-byte limit"),
    ))
}

/// One outbound call or cast from its JSON request (both ABIs send the same document), sent
/// by the host's services within the deadline of the call being handled.
pub(super) async fn outbound(
    services: Option<std::sync::Arc<dyn super::HostServices>>,
    deadline: std::time::Instant,
    bytes: &[u8],
) -> RpcResponse {
    let request = match serde_json::from_slice::<RpcRequest>(bytes) {
        Ok(request) => request,
        Err(e) => {
            return RpcResponse::Error(RpcFailure::new(
                RpcFailureKind::InvalidRequest,
                format!("unreadable request: {e}"),
            ));
        }
    };
    let Some(services) = services else {
        let failure = RpcFailure::new(RpcFailureKind::Unavailable, "this host lends no outbound calls to guests");
        return RpcResponse::Error(failure);
    };
    services.rpc(request, deadline).await
}

/// Copies `bytes` into a buffer from the guest's `wasmrpc_alloc`; returns it packed.
async fn give(caller: &mut Caller<'_, StoreState>, bytes: &[u8]) -> wasmtime::Result<i64> {
    let Some(Extern::Func(alloc)) = caller.get_export(ALLOC_EXPORT) else {
        return Err(wasmtime::Error::msg("the module exports no `wasmrpc_alloc`"));
    };
    let alloc = alloc.typed::<i32, i32>(&*caller)?;
    let len = i32::try_from(bytes.len()).map_err(|_| wasmtime::Error::msg("a reply larger than 2 GiB"))?;
    let ptr = alloc.call_async(&mut *caller, len).await?;
    let Some(Extern::Memory(memory)) = caller.get_export(wasmrpc_abi::MEMORY) else {
        return Err(wasmtime::Error::msg("the module exports no `memory`"));
    };
    memory
        .write(&mut *caller, ptr as u32 as usize, bytes)
        .map_err(|_| wasmtime::Error::msg("wasmrpc_alloc returned a buffer outside memory"))?;
    Ok(pack(ptr as u32, len as u32) as i64)
}

fn read_text(caller: &mut Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<String> {
    let len = (len as u32).min(MAX_TEXT) as i32;
    Ok(String::from_utf8_lossy(&read_bytes(caller, ptr, len)?).into_owned())
}

fn read_bytes(caller: &mut Caller<'_, StoreState>, ptr: i32, len: i32) -> wasmtime::Result<Vec<u8>> {
    let Some(Extern::Memory(memory)) = caller.get_export(wasmrpc_abi::MEMORY) else {
        return Err(wasmtime::Error::msg("the module exports no `memory`"));
    };
    let start = ptr as u32 as usize;
    let end = start.saturating_add(len as u32 as usize);
    memory
        .data(&*caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| wasmtime::Error::msg("the guest passed a buffer outside its memory"))
}
