"""The tenant portal at ``/portal``: one tenant's endpoints and deliveries, opened with a link
the product hands its customer."""

from hookpost.portal.site import install

__all__ = ["install"]
