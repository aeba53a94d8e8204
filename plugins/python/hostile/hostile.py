"""Misbehaves on request, in Python: ``spin()`` never returns (the deadline must stop it),
``grow(chunk_mb)`` allocates without bound (the memory limit must stop it), ``ping()`` answers
``"pong"``, to show the host still serves."""

import wasmrpc


class Hostile:
    target = wasmrpc.Target(version="1.0")

    def __init__(self):
        self.hoard = []

    def spin(self, ctxt):
        n = 0
        while True:
            n += 1

    def grow(self, ctxt, chunk_mb):
        while True:
            self.hoard.append(bytearray(chunk_mb << 20))

    def ping(self, ctxt):
        return "pong"
