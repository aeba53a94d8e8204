"""A real oslo.messaging notification listener for wasmrpc's interop tests.

usage: python oslo_listener.py URL EXCHANGE TOPIC [POOL]
Prints "ready", then one JSON line per notification received; runs until stdin closes.
"""
import json
import sys
import threading

from oslo_config import cfg
import oslo_messaging as om

LOCK = threading.Lock()


class Printer:
    def _print(self, priority, ctxt, publisher_id, event_type, payload, metadata):
        with LOCK:
            print(json.dumps({"priority": priority, "ctxt": ctxt, "publisher_id": publisher_id,
                              "event_type": event_type, "payload": payload, "metadata": metadata}), flush=True)

    def audit(self, *a):
        self._print("audit", *a)

    def debug(self, *a):
        self._print("debug", *a)

    def info(self, *a):
        self._print("info", *a)

    def warn(self, *a):
        self._print("warn", *a)

    def error(self, *a):
        self._print("error", *a)

    def critical(self, *a):
        self._print("critical", *a)

    def sample(self, *a):
        self._print("sample", *a)


def main():
    url, exchange, topic = sys.argv[1:4]
    pool = sys.argv[4] if len(sys.argv) > 4 else None
    conf = cfg.CONF
    conf([], project="wasmrpc-interop")
    om.set_transport_defaults(control_exchange=exchange)
    transport = om.get_notification_transport(conf, url=url)
    listener = om.get_notification_listener(transport, [om.Target(topic=topic)], [Printer()],
                                            executor="threading", pool=pool)
    listener.start()
    print("ready", flush=True)
    sys.stdin.read()
    listener.stop()
    listener.wait()
    transport.cleanup()


if __name__ == "__main__":
    main()
