"""The host's imports (the WIT interface ``wasmrpc:endpoint/host``), and stand-ins off wasm.

Inside a component the bindings componentize-py generates (``wit_world``) are importable and
calls go to the host. Under a plain CPython (an endpoint's own unit tests) they are not: log
lines go to stderr, notifications are kept in :data:`sent`, outbound calls go to
:data:`outbound` (a function the test sets) and configuration comes from :data:`settings`, so
the same endpoint code runs in both places.
"""

import json
import sys

try:
    from wit_world.imports import host as _host
    from componentize_py_types import Err as _Err
except ImportError:  # plain CPython: no component around us
    _host = None
    _Err = None

IN_COMPONENT = _host is not None

#: Log levels, as the WIT interface names them (its ``level`` enum).
LEVELS = ("trace", "debug", "info", "warn", "error")
#: Notification priorities, as the WIT interface names them (its ``priority`` enum).
PRIORITIES = ("audit", "debug", "info", "warn", "error", "critical", "sample")

#: Off wasm: the notifications "sent", as ``(priority, event_type, payload_json, context_json)``.
sent = []

#: Off wasm: answers outbound calls. A function from the request (a dict, the JSON document
#: docs/abi.md describes under "Outbound calls") to the response dict (``{"ok": value}`` or
#: ``{"error": {...}}``); ``None``: every call fails as ``Unavailable``.
outbound = None

#: Off wasm: the ``[config]`` values.
settings = {}

if IN_COMPONENT:
    _LEVEL = {name: getattr(_host.Level, name.upper()) for name in LEVELS}
    _PRIORITY = {name: getattr(_host.Priority, name.upper()) for name in PRIORITIES}


def log(level, message):
    """Writes one line to the host's log; ``level`` is one of :data:`LEVELS`."""
    if IN_COMPONENT:
        _host.log(_LEVEL[level], message)
    else:
        print(f"[{level}] {message}", file=sys.stderr)


def notify(priority, event_type, payload_json, context_json):
    """Emits a notification. Returns ``True`` if the host sent it, ``False`` if the manifest
    denied it; raises ``ValueError`` if the host found the request invalid."""
    if not IN_COMPONENT:
        sent.append((priority, event_type, payload_json, context_json))
        return True
    try:
        _host.notify(_PRIORITY[priority], event_type, payload_json, context_json)
    except _Err as e:
        if e.value == _host.NotifyError.DENIED:
            return False
        raise ValueError(f"the host refused notification {event_type!r} as invalid") from None
    return True


def rpc(request_json):
    """Sends one outbound call or cast (JSON text of the request) and returns the JSON text of
    its outcome."""
    if IN_COMPONENT:
        return _host.rpc(request_json)
    if outbound is None:
        return json.dumps({"error": {"kind": "Unavailable", "type": "Unavailable",
                                     "message": "no wasmrpc.host.outbound is set outside a component"}})
    return json.dumps(outbound(json.loads(request_json)))


def config(key):
    """The manifest's ``[config]`` value of ``key``, or ``None``."""
    if IN_COMPONENT:
        return _host.config(key)
    return settings.get(key)
