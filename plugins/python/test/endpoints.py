"""oslo.messaging's own test endpoints, verbatim: ``TestEndpoint`` from the example in
``oslo_messaging/rpc/server.py`` (the seed service), and ``TestServerEndpoint`` from
``oslo_messaging/tests/functional/utils.py``. Neither imports oslo_messaging, so nothing
changes: ``scripts/build-python plugins/python/test endpoints:TestEndpoint`` builds the first.
"""

import time


class TestEndpoint(object):

    def test(self, ctx, arg):
        return arg


class TestServerEndpoint:
    """This MessagingServer that will be used during functional testing."""

    def __init__(self):
        self.ival = 0
        self.sval = ''

    def add(self, ctxt, increment):
        self.ival += increment
        return self.ival

    def subtract(self, ctxt, increment):
        if self.ival < increment:
            raise ValueError("ival can't go negative!")
        self.ival -= increment
        return self.ival

    def append(self, ctxt, text):
        self.sval += text
        return self.sval

    def long_running_task(self, ctxt, seconds):
        time.sleep(seconds)
