"""The calculator example in Python: ``add``, ``subtract``, ``multiply`` and ``divide`` on
numbers ``a`` and ``b``, with the same answers and errors as the Rust one (plugins/calculator).

Integers stay integers (``add(a=2, b=3)`` is ``5``); ``divide`` always returns a float.
Dividing by zero raises ``DivisionByZero``; an integer result outside 64 bits raises
``OverflowError`` (the host carries JSON integers as 64-bit numbers). Written as an
oslo.messaging endpoint; only the import differs (``import wasmrpc`` for ``import oslo_messaging``).
"""

import wasmrpc

INT64 = range(-(2**63), 2**63)


class DivisionByZero(Exception):
    def __init__(self):
        super().__init__("division by zero")


def _int64(result):
    if isinstance(result, int) and result not in INT64:
        raise OverflowError("integer result does not fit in 64 bits")
    return result


class Calculator:
    target = wasmrpc.Target(version="1.0")

    def add(self, ctxt, a, b):
        return _int64(a + b)

    def subtract(self, ctxt, a, b):
        return _int64(a - b)

    def multiply(self, ctxt, a, b):
        return _int64(a * b)

    def divide(self, ctxt, a, b):
        if b == 0:
            raise DivisionByZero()
        return a / b
