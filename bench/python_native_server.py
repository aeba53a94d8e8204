"""The native side of BENCHMARKS.md's Python table: a real oslo.messaging RPC server serving the
same endpoint class the wasmrpc component is built from (plugins/python/...), so the two rows
differ only in what runs the Python code.

usage: python python_native_server.py URL TOPIC DIR MODULE:CLASS

The class imports `wasmrpc` (the guest SDK) for `Target`; oslo's dispatcher insists on its own
`oslo_messaging.Target` type, so the endpoint's target is replaced by one with the same
namespace and version (the methods are untouched). The executor is "threading", as
../shared/bench/oslo_baseline.py's server (eventlet is deprecated in 18.x).
"""

import importlib
import os
import sys
import time

url, topic, directory, entry = sys.argv[1:5]
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [directory, os.path.join(root, "guest-sdk", "python")]
module_name, class_name = entry.split(":")
endpoint = getattr(importlib.import_module(module_name), class_name)()

from oslo_config import cfg  # noqa: E402
import oslo_messaging as om  # noqa: E402

cfg.CONF([], project="bench")
sdk_target = getattr(endpoint, "target", None)
if sdk_target is not None:
    endpoint.target = om.Target(namespace=sdk_target.namespace, version=sdk_target.version)
transport = om.get_rpc_transport(cfg.CONF, url=url)
server = om.get_rpc_server(transport, om.Target(topic=topic, server="native1"), [endpoint], executor="threading")
server.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(1)
except KeyboardInterrupt:
    server.stop()
    server.wait()
