"""The wasmrpc guest SDK for Python: oslo.messaging endpoint classes as wasmrpc components.

An endpoint is a class, as in oslo.messaging::

    import wasmrpc

    class Calculator:
        target = wasmrpc.Target(version="1.0")

        def add(self, ctxt, a, b):
            return a + b

Public methods are RPC methods, called with the request context and keyword arguments;
methods whose name starts with ``_`` are not exposed. An exception a method raises reaches
the caller as oslo's remote error, with its class name, module, ``args``, ``kwargs`` and
traceback (``builtins`` exceptions are re-raised as themselves by a Python caller).
``logging`` reaches the host's log; :data:`notifier` emits notifications;
:func:`get_rpc_client` calls and casts to other services (:mod:`wasmrpc.rpc`);
:func:`config.get` reads the manifest's ``[config]``.

The names mirror ``oslo_messaging``'s (``Target``, ``Notifier``, ``expected_exceptions``,
``ExpectedException``, ``NotificationResult``, ``get_rpc_transport``, ``get_rpc_client``,
``RPCClient``, ``RemoteError``, ``MessagingTimeout``), so ``import wasmrpc as oslo_messaging`` ports
code that spells them ``oslo_messaging.X``. ``scripts/build-python DIR`` builds a directory
holding such a class into a component (docs/abi.md, "Components").
"""

from . import config
from .dispatch import ExpectedException, NoSuchMethod, expected_exceptions
from .notifier import NotificationResult, Notifier, notifier
from .rpc import (InvalidRequest, MessagingException, MessagingTimeout, NotAllowed, RemoteError, RPCClient,
                  RPCVersionCapError, Unavailable, get_rpc_client, get_rpc_transport, get_transport)
from .target import Target

__all__ = [
    "ExpectedException",
    "InvalidRequest",
    "MessagingException",
    "MessagingTimeout",
    "NotAllowed",
    "RPCClient",
    "RPCVersionCapError",
    "RemoteError",
    "Unavailable",
    "config",
    "get_rpc_client",
    "get_rpc_transport",
    "get_transport",
    "NoSuchMethod",
    "NotificationResult",
    "Notifier",
    "Target",
    "expected_exceptions",
    "notifier",
]
