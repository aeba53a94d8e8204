"""Two builds of one Python endpoint for the hot-reload tests: ``version()`` says which build
answers (``VersionA`` or ``VersionB``, built from this file as two components)."""

import wasmrpc


class VersionA:
    target = wasmrpc.Target(version="1.0")

    def version(self, ctxt):
        return "python-a"


class VersionB:
    target = wasmrpc.Target(version="1.0")

    def version(self, ctxt):
        return "python-b"
