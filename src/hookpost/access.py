"""Who is asking, and what they may see and do: one model for the REST API (an API key), the
console (an operator's session), the portal (a tenant's link) and the intake of events.

A ``Viewer`` of no tenant is an operator and sees everything; a viewer of one tenant sees only
that tenant's objects, and anything else is answered as not found (``errors.NotFound``), so
that a neighbour's ids cannot be probed. ``may_change`` is False for a read-only portal link.
"""

import uuid
from dataclasses import dataclass
from typing import TypeVar

from hookpost.errors import AdminOnly, Kind, NotFound, ReadOnly

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Viewer:
    """An operator (``tenant_id`` None) or one tenant; ``key_id`` is the stored API key it
    came from, if any."""

    tenant_id: uuid.UUID | None
    may_change: bool = True
    key_id: uuid.UUID | None = None

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def can_see(self, tenant_id: uuid.UUID) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id

    def require_operator(self) -> None:
        if not self.is_operator:
            raise AdminOnly("This action needs an admin API key")

    def require_change(self) -> None:
        if not self.may_change:
            raise ReadOnly("This link may look but not change anything")

    def seen(self, kind: Kind, ref: str, found: T | None, tenant_id: uuid.UUID | None) -> T:
        """``found`` when it exists and belongs to a tenant this viewer sees (``tenant_id``,
        None for an object of no tenant); else ``NotFound``, the same for both."""
        if found is None or (tenant_id is not None and not self.can_see(tenant_id)):
            raise NotFound(kind, ref)
        return found


OPERATOR = Viewer(tenant_id=None)
