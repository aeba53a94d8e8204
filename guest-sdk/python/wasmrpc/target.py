"""``Target``: the RPC API an endpoint class implements."""


class Target:
    """oslo.messaging's ``Target``, with the same arguments.

    On an endpoint class only ``namespace`` and ``version`` mean something: they are what the
    endpoint implements, and the host checks them against its manifest's ``[target]``. Where
    the endpoint listens (``topic``, ``server``, ``exchange``, ``fanout``) is the manifest's
    business; those arguments are kept so oslo code constructs the same object.
    """

    def __init__(self, exchange=None, topic=None, namespace=None, version=None, server=None,
                 fanout=None, legacy_namespaces=None):
        self.exchange = exchange
        self.topic = topic
        self.namespace = namespace
        self.version = version
        self.server = server
        self.fanout = fanout
        self.accepted_namespaces = [namespace] + (legacy_namespaces or [])

    def __call__(self, **kwargs):
        """A copy with some attributes replaced, as oslo's ``Target.__call__``."""
        attrs = {k: getattr(self, k) for k in ("exchange", "topic", "namespace", "version", "server", "fanout")}
        attrs.update(kwargs)
        return Target(**attrs)

    def __repr__(self):
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None and k != "accepted_namespaces")
        return f"<Target {attrs}>"

    def __eq__(self, other):
        return isinstance(other, Target) and vars(self) == vars(other)

    def __hash__(self):
        return hash((self.namespace, self.version))
