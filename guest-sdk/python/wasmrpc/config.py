"""The manifest's ``[config]`` values::

    limit = int(wasmrpc.config.get("limit", "10"))

Values are text, as the manifest (or the environment variable or file it names) gives them.
A secret value reaches the guest like any other; the host keeps it out of its logs and listings.
"""

from . import host


def get(key, default=None):
    """The value of ``key``, or ``default`` when the manifest does not set it."""
    value = host.config(key)
    return default if value is None else value
