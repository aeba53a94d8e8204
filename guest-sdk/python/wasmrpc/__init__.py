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
``logging`` reaches the host's log; :data:`notifier` emits notifications.

The names mirror ``oslo_messaging``'s (``Target``, ``Notifier``, ``expected_exceptions``,
``ExpectedException``, ``NotificationResult``), so ``import wasmrpc as oslo_messaging`` ports
code that spells them ``oslo_messaging.X``. ``scripts/build-python DIR`` builds a directory
holding such a class into a component (docs/abi.md, "Components").
"""

from .dispatch import ExpectedException, NoSuchMethod, expected_exceptions
from .notifier import NotificationResult, Notifier, notifier
from .target import Target

__all__ = [
    "ExpectedException",
    "NoSuchMethod",
    "NotificationResult",
    "Notifier",
    "Target",
    "expected_exceptions",
    "notifier",
]
