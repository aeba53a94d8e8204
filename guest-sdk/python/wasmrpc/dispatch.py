"""Dispatch of one call to an endpoint object, as oslo.messaging's ``RPCDispatcher`` does it.

Pure Python: it knows nothing of components, so it runs (and is tested) under any CPython.
:mod:`wasmrpc.component` puts it behind the WIT world's ``describe`` and ``call``.
"""

import inspect
import logging
import sys
import traceback

from . import encoding
from .target import Target

LOG = logging.getLogger("wasmrpc")

#: The version of the description document (the same document ABI v1's describe returns).
DESCRIPTION_VERSION = 1


class ExpectedException(Exception):
    """oslo's ``ExpectedException``: wraps the exception being handled, which reaches the
    caller as itself but is logged at debug level rather than as a failure."""

    def __init__(self):
        super().__init__()
        self.exc_info = sys.exc_info()


def expected_exceptions(*exceptions):
    """oslo's decorator: the listed exceptions (and their subclasses) are expected outcomes of
    the method, not faults of the endpoint."""

    def outer(func):
        def inner(*args, **kwargs):
            try:
                return func(*args, **kwargs)
            except exceptions:
                raise ExpectedException()

        inner.__name__ = func.__name__
        inner.__doc__ = func.__doc__
        inner.__wrapped__ = func  # keeps the signature visible to describe()
        return inner

    return outer


class NoSuchMethod(AttributeError):
    """oslo's ``NoSuchMethod``: the endpoint has no public method of that name."""

    def __init__(self, method):
        super().__init__(f"Endpoint does not support RPC method {method}")
        self.method = method


# The caller must see oslo's own class, as a Python server reports it.
NoSuchMethod.__module__ = "oslo_messaging.rpc.dispatcher"


class Failure:
    """An exception on its way to the caller: the fields of oslo's serialized remote error."""

    __slots__ = ("exc_type", "message", "module", "traceback", "args", "details")

    def __init__(self, exc_type, message, module, traceback_lines, args, details):
        self.exc_type = exc_type
        self.message = message
        self.module = module
        self.traceback = traceback_lines
        self.args = args
        self.details = details

    @classmethod
    def from_exc_info(cls, exc_info):
        """As oslo's ``serialize_remote_exception``: class and module names, ``str()``, the
        formatted traceback, ``args`` and the exception's ``kwargs`` attribute if it has one.
        ``args`` or ``kwargs`` that JSON cannot carry are left out (the caller then gets
        ``[message]`` and no kwargs) rather than turning the failure into another one."""
        exc = exc_info[1]
        kwargs = getattr(exc, "kwargs", None)
        return cls(
            exc_type=type(exc).__name__,
            message=str(exc),
            module=type(exc).__module__,
            traceback_lines=traceback.format_exception(*exc_info),
            args=_json_or_none(list(exc.args)),
            details=_json_or_none(kwargs) if isinstance(kwargs, dict) else None,
        )

    def __repr__(self):
        return f"<Failure {self.module}.{self.exc_type}: {self.message}>"


def _json_or_none(value):
    try:
        return encoding.dumps(value)
    except (TypeError, ValueError):
        return None


class Dispatcher:
    """Serves one endpoint object: its description, and calls to its public methods."""

    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.methods = {name: getattr(endpoint, name) for name in public_methods(type(endpoint))}

    def describe(self):
        """The description document (docs/abi.md, "Description")."""
        target = getattr(self.endpoint, "target", None)
        if target is not None and not isinstance(target, Target):
            raise TypeError(
                f"{type(self.endpoint).__name__}.target must be a wasmrpc.Target, not {type(target).__name__}")
        description = {
            "abi_version": DESCRIPTION_VERSION,
            "endpoint": type(self.endpoint).__name__,
            "methods": [{"name": name, "params": params(fn)} for name, fn in self.methods.items()],
        }
        if target is not None and target.version is not None:
            description["version"] = target.version
        if target is not None and target.namespace is not None:
            description["namespace"] = target.namespace
        return description

    def call(self, method, context_json, args_json):
        """Runs ``method(ctxt, **args)``. Returns ``(True, result_json)`` or
        ``(False, Failure)``; never raises for anything the method does."""
        try:
            fn = self.methods.get(method)
            if fn is None:
                raise NoSuchMethod(method)
            ctxt = encoding.loads(context_json)
            args = encoding.loads(args_json)
            return True, encoding.dumps(fn(ctxt, **args))
        except ExpectedException as e:
            LOG.debug("Expected exception during message handling (%s)", e.exc_info[1])
            return False, Failure.from_exc_info(e.exc_info)
        except Exception:  # noqa: BLE001 - every failure goes back to the caller, as in oslo
            failure = Failure.from_exc_info(sys.exc_info())
            # oslo's LOG.exception, with the traceback formatted once: formatting reads the
            # source files, which in a component are WASI file reads.
            LOG.error("Exception during message handling\n%s", "".join(failure.traceback).rstrip("\n"))
            return False, failure


def public_methods(cls):
    """The names oslo's default access policy lets callers reach: the class's functions (static
    and class methods included) whose name does not start with ``_``, in name order."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if inspect.isfunction(attr) or isinstance(attr, (staticmethod, classmethod)):
            names.append(name)
    return names


def params(bound):
    """The keyword parameters after the context: what callers pass by name."""
    try:
        sig = inspect.signature(bound)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names = [p.name for p in sig.parameters.values() if p.kind in kinds]
    return names[1:]  # the first is the request context
