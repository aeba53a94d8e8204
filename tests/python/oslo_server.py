"""A real oslo.messaging RPC server for wasmrpc's interop tests.

usage: python oslo_server.py URL EXCHANGE TOPIC SERVER [OPTION=VALUE ...]
Serves until stdin closes. Prints "ready" once listening.

Endpoints, in this order:
- Calc, version 1.3, null namespace: add, echo, ctx, boom (raises Boom), value_error,
  slow, record / recorded (what casts delivered), whoami
- Tester, namespace "ns2", version 2.1: test
"""
import sys
import threading
import time

from oslo_config import cfg
import oslo_messaging as om


class Boom(Exception):
    """A Python exception the caller must see as RemoteError with this class name."""


class Calc:
    target = om.Target(version="1.3")

    def __init__(self, server):
        self.server = server
        self.records = []
        self.lock = threading.Lock()

    def add(self, ctxt, a, b):
        return a + b

    def echo(self, ctxt, value):
        return value

    def ctx(self, ctxt):
        return ctxt

    def boom(self, ctxt, message):
        raise Boom(message)

    def value_error(self, ctxt):
        raise ValueError("bad value", 42)

    def slow(self, ctxt, seconds):
        time.sleep(seconds)
        return seconds

    def record(self, ctxt, tag):
        with self.lock:
            self.records.append(tag)

    def recorded(self, ctxt):
        with self.lock:
            return list(self.records)

    def whoami(self, ctxt):
        return self.server

    def _private(self, ctxt):
        return "never"


class Tester:
    target = om.Target(namespace="ns2", version="2.1")

    def test(self, ctxt, arg):
        return arg


def main():
    url, exchange, topic, server = sys.argv[1:5]
    query = "&".join(sys.argv[5:])
    if query:
        url = url + ("&" if "?" in url else "?") + query
    conf = cfg.CONF
    conf([], project="wasmrpc-interop")
    om.set_transport_defaults(control_exchange=exchange)
    transport = om.get_rpc_transport(conf, url=url)
    rpc = om.get_rpc_server(transport, om.Target(topic=topic, server=server), [Calc(server), Tester()], executor="threading")
    rpc.start()
    print("ready", flush=True)
    sys.stdin.read()
    rpc.stop()
    rpc.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
