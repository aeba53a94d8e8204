"""Calls and casts to other oslo.messaging services, through the host, with oslo's client API.

::

    import wasmrpc as oslo_messaging

    transport = oslo_messaging.get_rpc_transport()
    client = oslo_messaging.get_rpc_client(transport, oslo_messaging.Target(topic="calculator", version="1.0"))
    total = client.call(ctxt, "add", a=2, b=3)
    client.prepare(topic="compute", fanout=True).cast(ctxt, "added", total=total)

The host sends them over its own transport in oslo's wire format, to the topics the manifest's
``[outbound]`` grants (others raise :class:`NotAllowed` and send nothing). A call waits at
most its ``timeout`` (the host's ``rpc_response_timeout`` by default) and never longer than
what is left of the call being handled; the request carries that call's context, so the callee
logs the same ``request_id`` and ``global_request_id``.

Failures are raised as an oslo client raises them: the remote method's exception as
:class:`RemoteError` (or as itself when it is a ``builtins`` exception), no reply in time as
:class:`MessagingTimeout`.
"""

import builtins

from . import encoding, host
from .target import Target


class MessagingException(Exception):
    """oslo's base class of messaging failures."""


class MessagingTimeout(MessagingException):
    """No reply in time (oslo's ``MessagingTimeout``)."""


class RemoteError(MessagingException):
    """The remote method raised an exception its class could not be re-raised as (oslo's
    ``RemoteError``: ``exc_type``, ``value``, ``traceback``)."""

    def __init__(self, exc_type=None, value=None, traceback=None):
        self.exc_type = exc_type
        self.value = value
        self.traceback = traceback
        super().__init__(f"Remote error: {exc_type} {value}\n{traceback}.")


class NotAllowed(MessagingException):
    """The manifest's ``[outbound]`` does not grant this target; nothing was sent."""


class InvalidRequest(MessagingException, ValueError):
    """The host could not use the request (a bad version, a fanout call, arguments JSON
    cannot carry)."""


class Unavailable(MessagingException):
    """The host could not send it (no outbound transport, the broker unreachable)."""


class RPCVersionCapError(MessagingException):
    """The version asked for is above the client's ``version_cap`` (oslo's)."""

    def __init__(self, version, version_cap):
        self.version = version
        self.version_cap = version_cap
        super().__init__(f"Requested message version, {version} is incompatible. It needs to be equal in "
                         f"major version and less than or equal in minor version as the specified version "
                         f"cap {version_cap}.")


class Transport:
    """The host's transport: the only one a guest reaches, configured by the host."""

    def __repr__(self):
        return "<wasmrpc host transport>"


_TRANSPORT = Transport()


def get_rpc_transport(conf=None, url=None, allowed_remote_exmods=None):
    """oslo's ``get_rpc_transport``: here always the host's transport. A ``url`` is refused
    rather than ignored: a guest cannot choose where its calls go, only the host's operator can."""
    if url is not None:
        raise ValueError("a wasmrpc guest sends through the host's transport; it cannot name a transport URL")
    return _TRANSPORT


get_transport = get_rpc_transport


def _compatible(version, cap):
    if cap is None or version is None:
        return True
    want = [int(p) for p in version.split(".")]
    have = [int(p) for p in cap.split(".")]
    return want[0] == have[0] and want[1:] <= have[1:]


class RPCClient:
    """oslo's ``RPCClient``: ``call`` waits for the result, ``cast`` does not; ``prepare``
    returns a client with some target options changed."""

    def __init__(self, transport, target, timeout=None, version_cap=None, serializer=None, retry=None,
                 call_monitor_timeout=None, transport_options=None):
        if not isinstance(target, Target):
            raise TypeError("target must be a wasmrpc.Target")
        self.transport = transport
        self.target = target
        self.timeout = timeout
        self.version_cap = version_cap
        self.serializer = serializer

    def prepare(self, exchange=None, topic=None, namespace=None, version=None, server=None, fanout=None,
                timeout=None, version_cap=None, retry=None, call_monitor_timeout=None, transport_options=None):
        changes = {k: v for k, v in (("exchange", exchange), ("topic", topic), ("namespace", namespace),
                                      ("version", version), ("server", server), ("fanout", fanout))
                   if v is not None}
        return RPCClient(self.transport, self.target(**changes),
                         timeout=self.timeout if timeout is None else timeout,
                         version_cap=self.version_cap if version_cap is None else version_cap,
                         serializer=self.serializer)

    def can_send_version(self, version=None):
        return _compatible(version or self.target.version, self.version_cap)

    def call(self, ctxt, method, **kwargs):
        """Calls ``method(**kwargs)`` and returns its result."""
        return self._send(ctxt, method, kwargs, cast=False)

    def cast(self, ctxt, method, **kwargs):
        """Sends ``method(**kwargs)`` without waiting for a result."""
        self._send(ctxt, method, kwargs, cast=True)

    def _send(self, ctxt, method, kwargs, cast):
        target = self.target
        if not target.topic:
            raise InvalidRequest("a target needs a topic to send to")
        if not _compatible(target.version, self.version_cap):
            raise RPCVersionCapError(target.version, self.version_cap)
        if self.serializer is not None:
            kwargs = {k: self.serializer.serialize_entity(ctxt, v) for k, v in kwargs.items()}
            ctxt = self.serializer.serialize_context(ctxt)
        wire_target = {"topic": target.topic, "fanout": bool(target.fanout)}
        for key in ("server", "namespace", "version", "exchange"):
            if getattr(target, key) is not None:
                wire_target[key] = getattr(target, key)
        request = {"cast": cast, "target": wire_target, "method": method, "args": kwargs,
                   "context": encoding.context_dict(ctxt)}
        if self.timeout is not None:
            request["timeout"] = float(self.timeout)
        try:
            text = encoding.dumps(request)
        except (TypeError, ValueError) as e:
            raise InvalidRequest(f"the arguments of {method} cannot be sent as JSON: {e}") from None
        response = encoding.loads(host.rpc(text))
        if "error" in response:
            raise _failure(response["error"])
        result = response.get("ok")
        if self.serializer is not None:
            result = self.serializer.deserialize_entity(ctxt, result)
        return result


def get_rpc_client(transport, target, **kwargs):
    """oslo's ``get_rpc_client``."""
    return RPCClient(transport, target, **kwargs)


_KINDS = {
    "MessagingTimeout": MessagingTimeout,
    "NotAllowed": NotAllowed,
    "InvalidRequest": InvalidRequest,
    "Unavailable": Unavailable,
}


def _failure(error):
    """The exception an oslo client would raise for the host's failure document."""
    kind = error.get("kind")
    message = error.get("message", "")
    if kind in _KINDS:
        return _KINDS[kind](message)
    exc_type = error.get("type") or kind
    # As oslo's deserialize_remote_exception: builtins come back as themselves.
    if error.get("module") == "builtins":
        cls = getattr(builtins, exc_type, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            try:
                return cls(message)
            except Exception:  # an exception class with another signature
                pass
    return RemoteError(exc_type, message, None)
