"""The WIT world ``wasmrpc:endpoint/endpoint``'s exports, served by an endpoint class.

``scripts/build-python`` generates the component's entry module, which ends in::

    WitWorld = wasmrpc.component.world(endpoint_module, "ClassName")

componentize-py runs that module while it builds the component and snapshots the result, so
the endpoint object is constructed once, at build time, and every instance of the component
starts from it (a warm instance keeps whatever state its calls leave behind).
"""

import inspect

from . import encoding, log
from .dispatch import Dispatcher
from .target import Target


class EndpointNotFound(Exception):
    """The build was pointed at a module without exactly one endpoint class."""


def find_endpoint(module, name=None):
    """The endpoint class of ``module``: ``name`` if given; else the one class defined there
    whose ``target`` is a :class:`Target`; else the one class defined there at all."""
    if name:
        cls = getattr(module, name, None)
        if not inspect.isclass(cls):
            raise EndpointNotFound(f"module {module.__name__!r} has no class {name!r}")
        return cls
    classes = [c for n, c in vars(module).items()
               if inspect.isclass(c) and c.__module__ == module.__name__ and not n.startswith("_")
               and not issubclass(c, BaseException)]
    targeted = [c for c in classes if isinstance(getattr(c, "target", None), Target)]
    for found in (targeted, classes):
        if len(found) == 1:
            return found[0]
    names = ", ".join(c.__name__ for c in (targeted or classes)) or "none"
    raise EndpointNotFound(
        f"cannot tell which class of module {module.__name__!r} is the endpoint (candidates: {names}); "
        f"name it: scripts/build-python DIR {module.__name__}:CLASS")


def world(module, name=None):
    """The ``WitWorld`` class componentize-py exports, serving one instance of the endpoint
    class found in ``module`` (see :func:`find_endpoint`); the class is constructed with no
    arguments."""
    from componentize_py_types import Err
    from wit_world.imports.types import RemoteError

    cls = find_endpoint(module, name)
    dispatcher = Dispatcher(cls())
    description = encoding.dumps(dispatcher.describe())
    log.install()

    class WitWorld:
        def describe(self):
            return description

        def call(self, method, context, args):
            ok, value = dispatcher.call(method, context, args)
            if ok:
                return value
            raise Err(RemoteError(exc_type=value.exc_type, message=value.message, module=value.module,
                                  traceback=value.traceback, args=value.args, details=value.details))

    return WitWorld
