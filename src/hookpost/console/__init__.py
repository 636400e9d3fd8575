"""The operator console: server-rendered pages at ``/`` over the same functions as the REST
API, signed in with an admin API key."""

from hookpost.console.site import install

__all__ = ["install"]
