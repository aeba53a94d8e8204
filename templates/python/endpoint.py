"""The {{name}} endpoint: an oslo.messaging endpoint class, served by wasmrpc as a WebAssembly
component. Its public methods are RPC methods that callers reach by name on topic
``{{name}}``, with the request context and keyword arguments; ``_private`` ones are not.

Only the import differs from oslo.messaging code: ``import wasmrpc as oslo_messaging``.
"""

import logging

import wasmrpc as oslo_messaging

LOG = logging.getLogger(__name__)


class {{type_name}}:
    target = oslo_messaging.Target(version="1.0")

    def __init__(self):
        # Runs once, when the component is built; a warm instance keeps what calls change.
        self.calls = 0

    def greet(self, ctxt, name):
        """``greet(name="world")`` returns "Hello, world!"."""
        self.calls += 1
        if not name:
            # A Python caller gets this ValueError itself.
            raise ValueError("name is empty")
        return f"Hello, {name}!"

    def whoami(self, ctxt):
        """The caller's user, from the request context oslo.messaging sends with every call."""
        self.calls += 1
        LOG.info("whoami from request %s", ctxt.get("request_id", "-"))
        return ctxt.get("user")

    def stats(self, ctxt):
        """Calls this instance has handled."""
        return {"calls": self.calls}
