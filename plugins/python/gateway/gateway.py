"""A gateway in front of other services, in Python, through the host's outbound calls: the
Python twin of plugins/gateway. ``add`` asks the calculator endpoint, ``announce`` casts to
every server of a topic, ``setting`` reads the manifest's ``[config]``, ``relay`` sends any
call and reports the outcome as data (for the tests of what the manifest grants).

Written as oslo.messaging code: ``import wasmrpc as oslo_messaging`` is the only change.
"""

import wasmrpc as oslo_messaging
from wasmrpc import config

TRANSPORT = oslo_messaging.get_rpc_transport()


def _client(topic, **kwargs):
    return oslo_messaging.get_rpc_client(TRANSPORT, oslo_messaging.Target(topic=topic, **kwargs))


class Gateway:
    target = oslo_messaging.Target(version="1.0")

    def add(self, ctxt, a, b):
        """``a + b``, computed by the calculator endpoint."""
        return _client(config.get("calculator_topic", "calculator"), version="1.0").call(ctxt, "add", a=a, b=b)

    def announce(self, ctxt, topic, tag):
        """Casts ``record(tag)`` to every server of ``topic``."""
        _client(topic).prepare(fanout=True).cast(ctxt, "record", tag=tag)
        return True

    def setting(self, ctxt, key):
        """A ``[config]`` value (``None`` if the manifest does not set it)."""
        return config.get(key)

    def relay(self, ctxt, topic, method, args=None, timeout=None):
        """Calls ``method(**args)`` on ``topic``; returns ``{"ok": result}`` or
        ``{"error": {"class", "exc_type", "message"}}``."""
        try:
            client = _client(topic)
            if timeout is not None:
                client = client.prepare(timeout=timeout)
            return {"ok": client.call(ctxt, method, **(args or {}))}
        except oslo_messaging.RemoteError as e:
            return {"error": {"class": "RemoteError", "exc_type": e.exc_type, "message": e.value}}
        except oslo_messaging.MessagingException as e:
            return {"error": {"class": type(e).__name__, "message": str(e)}}
