//! The host functions offered to guests: `wasmrpc.log`, `wasmrpc.panic`, `wasmrpc.notify`.

use wasmrpc_abi::{
    HOST_MODULE, LOG_IMPORT, LogLevel, NOTIFY_DENIED, NOTIFY_DROPPED, NOTIFY_IMPORT, NOTIFY_INVALID, NOTIFY_SENT,
    NotifyRequest, PANIC_IMPORT,
};
use wasmtime::{Caller, Extern, Linker};

use super::store::StoreState;

/// Longest log line or panic message read from a guest.
const MAX_TEXT: u32 = 16 << 10;
/// Largest notification a guest may emit.
const MAX_NOTIFICATION: u32 = 1 << 20;

pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        LOG_IMPORT,
        |mut caller: Caller<'_, StoreState>, level: i32, ptr: i32, len: i32| {
            let guest = &caller.data().guest;
            if !guest.rates.log_line() {
                return Ok(());
            }
            let text = read_text(&mut caller, ptr, len)?;
            let endpoint = &caller.data().guest.name;
            match LogLevel::from_raw(level) {
                LogLevel::Trace => tracing::trace!(target: "wasmrpc::guest", %endpoint, "{text}"),
                LogLevel::Debug => tracing::debug!(target: "wasmrpc::guest", %endpoint, "{text}"),
                LogLevel::Info => tracing::info!(target: "wasmrpc::guest", %endpoint, "{text}"),
                LogLevel::Warn => tracing::warn!(target: "wasmrpc::guest", %endpoint, "{text}"),
                LogLevel::Error => tracing::error!(target: "wasmrpc::guest", %endpoint, "{text}"),
            }
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
        if !guest.grant.allows(&request.event_type) {
            // A line the guest causes, so under its log rate limit too.
            if guest.rates.log_line() {
                tracing::warn!(
                    endpoint = %guest.name,
                    event_type = %request.event_type,
                    "notification dropped: the manifest's [notifications] allow list does not include this event type"
                );
            }
            return Ok(NOTIFY_DENIED);
        }
        if !guest.rates.notification() {
            return Ok(NOTIFY_DROPPED);
        }
        let Some(sink) = &guest.notifications else {
            tracing::debug!(endpoint = %guest.name, event_type = %request.event_type, "notification dropped: no notification driver is configured");
            return Ok(NOTIFY_SENT);
        };
        let queued = sink.emit(&guest.name, guest.grant.publisher_id.as_deref(), request);
        Ok(if queued { NOTIFY_SENT } else { NOTIFY_DROPPED })
    })?;
    Ok(())
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
