"""The SDK's pure-Python logic under a plain CPython (the component build runs the same code
inside wasm): `python -m unittest discover -s guest-sdk/python/tests`."""

import json
import logging
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import wasmrpc  # noqa: E402
from wasmrpc import component, host  # noqa: E402
from wasmrpc.dispatch import Dispatcher  # noqa: E402
from wasmrpc.log import HostHandler  # noqa: E402


class Boom(Exception):
    def __init__(self, message, code):
        super().__init__(message, code)
        self.kwargs = {"code": code}


class Calc:
    target = wasmrpc.Target(namespace="calc", version="1.3")

    def __init__(self):
        self.count = 0

    def add(self, ctxt, a, b=1):
        return a + b

    def ctx(self, ctxt):
        return ctxt

    def bump(self, ctxt):
        self.count += 1
        return self.count

    def boom(self, ctxt, message):
        raise Boom(message, 42)

    def value_error(self, ctxt):
        raise ValueError("bad value", 42)

    @wasmrpc.expected_exceptions(KeyError)
    def lookup(self, ctxt, key):
        return {}[key]

    @staticmethod
    def static(ctxt, x):
        return x

    def when(self, ctxt):
        import datetime
        return {"at": datetime.datetime(2026, 1, 2, 3, 4, 5, 6), "tags": {"a"}}

    def nan(self, ctxt):
        return float("nan")

    @property
    def prop(self):
        raise AssertionError("describe must not evaluate properties")

    def _private(self, ctxt):
        return "never"


def call(d, method, args=None, ctxt=None):
    return d.call(method, json.dumps(ctxt or {"user": "u1"}), json.dumps(args or {}))


class DispatchTest(unittest.TestCase):
    def setUp(self):
        self.d = Dispatcher(Calc())
        logging.getLogger("wasmrpc").setLevel(logging.CRITICAL)

    def test_describe_lists_public_methods_with_their_keyword_parameters(self):
        desc = self.d.describe()
        self.assertEqual(desc["abi_version"], 1)
        self.assertEqual((desc["endpoint"], desc["version"], desc["namespace"]), ("Calc", "1.3", "calc"))
        methods = {m["name"]: m["params"] for m in desc["methods"]}
        self.assertEqual(sorted(methods), ["add", "boom", "bump", "ctx", "lookup", "nan", "static", "value_error",
                                           "when"])
        self.assertEqual(methods["add"], ["a", "b"])
        self.assertEqual(methods["lookup"], ["key"], "the decorator keeps the signature")
        self.assertEqual(methods["static"], ["x"])

    def test_an_endpoint_without_target_leaves_version_and_namespace_to_the_manifest(self):
        class TestEndpoint(object):
            def test(self, ctx, arg):
                return arg

        desc = Dispatcher(TestEndpoint()).describe()
        self.assertNotIn("version", desc)
        self.assertNotIn("namespace", desc)
        self.assertEqual(desc["methods"], [{"name": "test", "params": ["arg"]}])

    def test_a_target_of_another_type_is_refused_with_the_class_named(self):
        class Bad:
            target = "1.0"

        with self.assertRaisesRegex(TypeError, "Bad.target must be a wasmrpc.Target"):
            Dispatcher(Bad()).describe()

    def test_calls_get_the_context_and_keyword_arguments(self):
        self.assertEqual(call(self.d, "add", {"a": 2, "b": 3}), (True, "5"))
        self.assertEqual(call(self.d, "add", {"a": 2}), (True, "3"))
        self.assertEqual(call(self.d, "ctx", ctxt={"user": "ü"}), (True, '{"user":"ü"}'))
        self.assertEqual(call(self.d, "static", {"x": [1]}), (True, "[1]"))

    def test_state_lives_on_between_calls(self):
        self.assertEqual([call(self.d, "bump")[1] for _ in range(3)], ["1", "2", "3"])

    def test_results_are_encoded_as_oslo_jsonutils_does(self):
        ok, text = call(self.d, "when")
        self.assertTrue(ok)
        self.assertEqual(json.loads(text), {"at": "2026-01-02T03:04:05.000006", "tags": ["a"]})

    def test_a_raised_exception_becomes_the_remote_error_oslo_serializes(self):
        ok, f = call(self.d, "boom", {"message": "oh no"})
        self.assertFalse(ok)
        self.assertEqual((f.exc_type, f.module, f.message), ("Boom", __name__, "('oh no', 42)"))
        self.assertEqual(json.loads(f.args), ["oh no", 42])
        self.assertEqual(json.loads(f.details), {"code": 42}, "kwargs become details")
        self.assertEqual(f.traceback[0], "Traceback (most recent call last):\n")
        self.assertEqual(f.traceback[-1], f"{__name__}.Boom: ('oh no', 42)\n")
        self.assertTrue(any("raise Boom(message, 42)" in line for line in f.traceback), f.traceback)

    def test_builtin_exceptions_keep_module_builtins_and_their_args(self):
        _, f = call(self.d, "value_error")
        self.assertEqual((f.exc_type, f.module), ("ValueError", "builtins"))
        self.assertEqual(json.loads(f.args), ["bad value", 42])
        self.assertIsNone(f.details)

    def test_bad_arguments_are_a_type_error_as_in_python(self):
        _, f = call(self.d, "add", {"b": 1})
        self.assertEqual((f.exc_type, f.module), ("TypeError", "builtins"))
        self.assertIn("missing 1 required positional argument: 'a'", f.message)
        _, f = call(self.d, "add", {"a": 1, "c": 2})
        self.assertIn("unexpected keyword argument 'c'", f.message)

    def test_private_and_unknown_methods_are_no_such_method(self):
        for method in ("_private", "nosuch", "prop", "target", "__init__"):
            ok, f = call(self.d, method)
            self.assertFalse(ok)
            self.assertEqual((f.exc_type, f.module), ("NoSuchMethod", "oslo_messaging.rpc.dispatcher"))
            self.assertEqual(f.message, f"Endpoint does not support RPC method {method}")

    def test_expected_exceptions_reach_the_caller_as_themselves(self):
        with self.assertLogs("wasmrpc", level="DEBUG") as logs:
            logging.getLogger("wasmrpc").setLevel(logging.DEBUG)
            _, f = call(self.d, "lookup", {"key": "k"})
        self.assertEqual((f.exc_type, f.module, f.message), ("KeyError", "builtins", "'k'"))
        self.assertEqual([r.levelname for r in logs.records], ["DEBUG"], "expected: not logged as a failure")

    def test_unexpected_exceptions_are_logged_with_their_traceback(self):
        with self.assertLogs("wasmrpc", level="ERROR") as logs:
            logging.getLogger("wasmrpc").setLevel(logging.DEBUG)
            call(self.d, "value_error")
        message = logs.records[0].getMessage()
        self.assertTrue(message.startswith("Exception during message handling\nTraceback (most recent call last):\n"))
        self.assertTrue(message.endswith("ValueError: ('bad value', 42)"), message)

    def test_a_result_json_cannot_carry_is_a_failure_not_a_crash(self):
        _, f = call(self.d, "nan")
        self.assertEqual((f.exc_type, f.module), ("ValueError", "builtins"))

    def test_args_json_cannot_carry_are_left_out(self):
        class Odd(Exception):
            pass

        class E:
            def odd(self, ctxt):
                raise Odd(object())

        _, f = call(Dispatcher(E()), "odd")
        self.assertEqual(f.exc_type, "Odd")
        self.assertIsNone(f.args)


class FindEndpointTest(unittest.TestCase):
    def module(self, **classes):
        import types
        m = types.ModuleType("m")
        for name, cls in classes.items():
            cls.__module__ = "m"
            setattr(m, name, cls)
        return m

    def test_the_class_with_a_target_wins(self):
        a = type("A", (), {"target": wasmrpc.Target(version="1.0")})
        b = type("B", (), {})
        self.assertIs(component.find_endpoint(self.module(A=a, B=b)), a)

    def test_a_lone_class_needs_no_target_and_exceptions_do_not_count(self):
        a = type("A", (), {})
        err = type("Err", (Exception,), {})
        self.assertIs(component.find_endpoint(self.module(A=a, Err=err)), a)

    def test_ambiguity_names_the_candidates_and_the_way_out(self):
        m = self.module(A=type("A", (), {}), B=type("B", (), {}))
        with self.assertRaisesRegex(component.EndpointNotFound, r"candidates: A, B\).*m:CLASS"):
            component.find_endpoint(m)
        with self.assertRaisesRegex(component.EndpointNotFound, "has no class 'C'"):
            component.find_endpoint(m, "C")
        self.assertEqual(component.find_endpoint(m, "B").__name__, "B")


class NotifierTest(unittest.TestCase):
    def setUp(self):
        host.sent.clear()

    def test_priorities_context_and_payload_cross_as_json(self):
        self.assertTrue(wasmrpc.notifier.info({"request_id": "r1"}, "calc.added", {"sum": 5}))
        wasmrpc.notifier.prepare(publisher_id="ignored").warning(None, "calc.odd", [1])
        wasmrpc.Notifier().sample({}, "calc.sample", 1.5)
        self.assertEqual(host.sent, [
            ("info", "calc.added", '{"sum":5}', '{"request_id":"r1"}'),
            ("warn", "calc.odd", "[1]", "{}"),
            ("sample", "calc.sample", "1.5", "{}"),
        ])

    def test_a_request_context_object_is_sent_as_its_dict(self):
        class RequestContext:
            def to_dict(self):
                return {"user": "u"}

        wasmrpc.notifier.audit(RequestContext(), "e", None)
        self.assertEqual(host.sent[-1][3], '{"user":"u"}')

    def test_a_payload_json_cannot_carry_raises_type_error(self):
        with self.assertRaisesRegex(TypeError, "object is not JSON serializable"):
            wasmrpc.notifier.error({}, "e", object())
        self.assertEqual(host.sent, [])


class LogTest(unittest.TestCase):
    def test_levels_map_onto_the_hosts(self):
        lines = []
        original = host.log
        host.log = lambda level, message: lines.append((level, message))
        try:
            logger = logging.getLogger("calc")
            logger.addHandler(HostHandler())
            logger.setLevel(1)
            logger.propagate = False
            logger.log(5, "fine")
            logger.debug("d")
            logger.info("i %s", 1)
            logger.warning("w")
            logger.error("e")
            logger.critical("c")
            try:
                raise KeyError("k")
            except KeyError:
                logger.exception("failed")
        finally:
            host.log = original
        self.assertEqual(lines[:6], [("trace", "calc: fine"), ("debug", "calc: d"), ("info", "calc: i 1"),
                                     ("warn", "calc: w"), ("error", "calc: e"), ("error", "calc: c")])
        self.assertTrue(lines[6][1].startswith("calc: failed\nTraceback"), lines[6])


class RpcClientTest(unittest.TestCase):
    def setUp(self):
        self.sent = []

        def answer(request):
            self.sent.append(request)
            return self.response

        self.response = {"ok": 5}
        host.outbound = answer
        self.addCleanup(setattr, host, "outbound", None)
        self.client = wasmrpc.get_rpc_client(wasmrpc.get_rpc_transport(),
                                             wasmrpc.Target(topic="calculator", version="1.0"))

    def test_a_call_sends_the_documented_request_and_returns_the_result(self):
        self.assertEqual(self.client.call({"request_id": "req-1"}, "add", a=2, b=3), 5)
        self.assertEqual(self.sent, [{"cast": False, "target": {"topic": "calculator", "fanout": False, "version": "1.0"},
                                      "method": "add", "args": {"a": 2, "b": 3},
                                      "context": {"request_id": "req-1"}}])

    def test_prepare_changes_the_target_and_timeout_and_cast_returns_nothing(self):
        self.response = {"ok": None}
        client = self.client.prepare(topic="compute", fanout=True, server="c1", timeout=2.5)
        self.assertIsNone(client.cast({}, "added", total=5))
        request = self.sent[0]
        self.assertTrue(request["cast"])
        self.assertEqual(request["target"], {"topic": "compute", "fanout": True, "server": "c1", "version": "1.0"})
        self.assertEqual(request["timeout"], 2.5)
        self.assertEqual(self.client.target.topic, "calculator")

    def test_failures_are_raised_as_an_oslo_client_raises_them(self):
        self.response = {"error": {"kind": "RemoteError", "type": "DivisionByZero", "module": "calc",
                                   "message": "division by zero"}}
        with self.assertRaises(wasmrpc.RemoteError) as raised:
            self.client.call({}, "divide", a=1, b=0)
        self.assertEqual((raised.exception.exc_type, raised.exception.value), ("DivisionByZero", "division by zero"))
        self.response = {"error": {"kind": "RemoteError", "type": "ValueError", "module": "builtins", "message": "bad"}}
        with self.assertRaisesRegex(ValueError, "bad"):
            self.client.call({}, "x")
        for kind, cls in (("MessagingTimeout", wasmrpc.MessagingTimeout), ("NotAllowed", wasmrpc.NotAllowed),
                          ("InvalidRequest", wasmrpc.InvalidRequest), ("Unavailable", wasmrpc.Unavailable)):
            self.response = {"error": {"kind": kind, "type": kind, "message": "m"}}
            with self.assertRaises(cls):
                self.client.call({}, "x")

    def test_the_version_cap_is_checked_before_anything_is_sent(self):
        capped = wasmrpc.get_rpc_client(wasmrpc.get_rpc_transport(), wasmrpc.Target(topic="t", version="1.5"),
                                        version_cap="1.3")
        self.assertFalse(capped.can_send_version())
        self.assertTrue(capped.can_send_version("1.2"))
        with self.assertRaises(wasmrpc.RPCVersionCapError):
            capped.call({}, "x")
        self.assertEqual(self.sent, [])

    def test_arguments_json_cannot_carry_are_refused_before_sending(self):
        with self.assertRaises(wasmrpc.InvalidRequest):
            self.client.call({}, "x", value=object())
        self.assertEqual(self.sent, [])

    def test_a_transport_url_is_refused(self):
        with self.assertRaises(ValueError):
            wasmrpc.get_rpc_transport(url="rabbit://elsewhere")


class ConfigTest(unittest.TestCase):
    def test_values_and_defaults(self):
        host.settings["limit"] = "7"
        self.addCleanup(host.settings.clear)
        self.assertEqual(wasmrpc.config.get("limit"), "7")
        self.assertIsNone(wasmrpc.config.get("absent"))
        self.assertEqual(wasmrpc.config.get("absent", "10"), "10")


class TargetTest(unittest.TestCase):
    def test_oslo_arguments_and_call_copy(self):
        t = wasmrpc.Target(topic="t", namespace="ns", version="2.1", legacy_namespaces=["old"])
        self.assertEqual(t.accepted_namespaces, ["ns", "old"])
        self.assertEqual(t(version="2.2").version, "2.2")
        self.assertEqual(t(version="2.2").namespace, "ns")


if __name__ == "__main__":
    unittest.main()
