"""A site: the pages and forms the console and the portal both serve (an endpoint and its
actions, a delivery and its resend), registered once on the site's router over
``sites.actions``. A site class says only what it alone has: how a browser signs in to it,
which ``Viewer`` that makes, what a change needs, how its pages are dressed, and what else its
endpoint page shows; each site then adds its own routes to ``router``. The pattern is
Django's ``AdminSite``: one set of actions, a site per audience."""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.access import Viewer
from hookpost.admin import endpoints as admin_endpoints
from hookpost.db.models import Attempt, Endpoint
from hookpost.errors import HookpostError
from hookpost.ingest import events
from hookpost.ops import logs
from hookpost.sites import actions
from hookpost.sites.rendering import render, see_other
from hookpost.sites.session import Session
from hookpost.state import AppState

# An old signing secret keeps signing this long after a rotation from a site.
ROTATION_GRACE_S = 24 * 3600
ROTATED = "A new signing secret is current; the old ones keep signing for 24 hours."
LAST_ATTEMPTS = 10


class SignInNeeded(HookpostError):
    """No valid session on ``site``: the browser must sign in (or open its link) again."""

    code: ClassVar[str] = "sign_in_needed"

    def __init__(self, site: "Site") -> None:
        super().__init__(f"no session for the pages at {site.prefix or '/'}")
        self.site = site


class Refused(HookpostError):
    """A form without its session's CSRF token, or a change its session may not make."""

    code: ClassVar[str] = "csrf_refused"

    def __init__(self, site: "Site") -> None:
        super().__init__("the form was refused")
        self.site = site


class Site(ABC):
    """The shared routes of one site under ``prefix``; the hooks are its own."""

    prefix: ClassVar[str]
    endpoint_template: ClassVar[str]
    delivery_template: ClassVar[str]

    def __init__(self) -> None:
        self.router = APIRouter(prefix=self.prefix, include_in_schema=False)
        self._register()

    # what each site says for itself

    @abstractmethod
    async def signed_in(self, request: Request) -> tuple[AppState, Session]:
        """The app state and the browser's session, or the site's sign-in error."""

    @abstractmethod
    def viewer(self, found: Session) -> Viewer:
        """Who the session's browser is, for what it may see."""

    @abstractmethod
    def check_form(self, found: Session, csrf: str | None, *, changes: bool) -> None:
        """Refuse a form without the session's token, or a change the session may not make."""

    @abstractmethod
    def dress(self, state: AppState, found: Session | None) -> dict[str, Any]:
        """What this site's pages are rendered with besides their own context (the form
        token, the Content-Security-Policy, the brand)."""

    @abstractmethod
    def not_found(self, request: Request, state: AppState, found: Session, what: str) -> Response:
        """The page for an ``what`` (endpoint, delivery, event) this viewer cannot see."""

    @abstractmethod
    def sign_in_answer(self, request: Request) -> Response:
        """The answer to a request without a valid session (``SignInNeeded``)."""

    @abstractmethod
    def refused_answer(self, request: Request) -> Response:
        """The answer to a refused form (``Refused``)."""

    async def endpoint_extras(
        self,
        request: Request,
        session: AsyncSession,
        state: AppState,
        endpoint: Endpoint,
        shown: dict[str, Any],
    ) -> dict[str, Any]:
        """What else this site's endpoint page shows, besides the shared context."""
        return {}

    def install(self, app: FastAPI) -> None:
        """Serve this site's pages on ``app``; each refusal is answered by the site that
        raised it."""
        app.include_router(self.router)

        @app.exception_handler(SignInNeeded)
        async def sign_in(request: Request, error: SignInNeeded) -> Response:
            return error.site.sign_in_answer(request)

        @app.exception_handler(Refused)
        async def refused(request: Request, error: Refused) -> Response:
            return error.site.refused_answer(request)

    # the shared pages

    def page(
        self,
        request: Request,
        state: AppState,
        found: Session | None,
        template: str,
        status_code: int = 200,
        **context: Any,
    ) -> Response:
        """``template`` rendered as this site dresses its pages."""
        return render(request, template, status_code, **self.dress(state, found), **context)

    def path(self, tail: str) -> str:
        return f"{self.prefix}{tail}"

    async def endpoint_page(
        self,
        request: Request,
        state: AppState,
        found: Session,
        ref: str,
        *,
        status_code: int = 200,
        **shown: Any,
    ) -> Response:
        """The endpoint ``ref`` with its subscriptions and last attempts, and ``shown`` (a
        message, an error, a secret) above them."""
        async with state.sessions() as session:
            endpoint = await actions.endpoint(session, self.viewer(found), ref)
            if endpoint is None:
                return self.not_found(request, state, found, "endpoint")
            attempts = await session.scalars(
                select(Attempt)
                .where(Attempt.endpoint_id == endpoint.id)
                .order_by(Attempt.id.desc())
                .limit(LAST_ATTEMPTS)
            )
            context = {
                "message": None,
                "error": None,
                "secret": None,
                **shown,
                "endpoint": endpoint,
                "attempts": attempts.all(),
                "subscriptions": await admin_endpoints.subscriptions(session, endpoint.id),
                **await self.endpoint_extras(request, session, state, endpoint, shown),
            }
        return self.page(request, state, found, self.endpoint_template, status_code, **context)

    @asynccontextmanager
    async def changing(
        self, request: Request, ref: str, csrf: str | None
    ) -> AsyncIterator[tuple[AppState, Session, AsyncSession, Endpoint | None]]:
        """For a change to an endpoint: the session (its token and right to change checked),
        a database session in a transaction, and the endpoint (None: not one it may see)."""
        state, found = await self.signed_in(request)
        self.check_form(found, csrf, changes=True)
        async with state.sessions() as session, session.begin():
            yield state, found, session, await actions.endpoint(session, self.viewer(found), ref)

    def _register(self) -> None:
        router = self.router

        @router.get("/endpoints/{endpoint_id}")
        async def endpoint_page(request: Request, endpoint_id: str) -> Response:
            state, found = await self.signed_in(request)
            return await self.endpoint_page(request, state, found, endpoint_id)

        @router.post("/endpoints/{endpoint_id}/url")
        async def change_url(
            request: Request,
            endpoint_id: str,
            url: Annotated[str, Form(max_length=2048)],
            csrf: Annotated[str | None, Form()] = None,
        ) -> Response:
            state, found = await self.signed_in(request)
            self.check_form(found, csrf, changes=True)
            checked, refusal = actions.checked_url(state.settings, url)
            if checked is None:
                error = f"The URL was not changed: {refusal}."
                return await self.endpoint_page(
                    request, state, found, endpoint_id, error=error, status_code=422
                )
            async with state.sessions() as session, session.begin():
                endpoint = await actions.endpoint(session, self.viewer(found), endpoint_id)
                if endpoint is None:
                    return self.not_found(request, state, found, "endpoint")
                await admin_endpoints.update(session, endpoint, {"url": checked})
            return see_other(self.path(f"/endpoints/{endpoint_id}"))

        @router.post("/endpoints/{endpoint_id}/filter-test")
        async def sample_event_verdict(
            request: Request,
            endpoint_id: str,
            event_type: Annotated[str, Form(min_length=1, max_length=255)],
            payload: Annotated[str, Form(max_length=65_536)],
            channels: Annotated[str, Form(max_length=1400)] = "",
            csrf: Annotated[str | None, Form()] = None,
        ) -> Response:
            """Whether a sample event would reach the endpoint, and why. Nothing is stored or
            sent, so a viewer who may not change anything may ask too."""
            state, found = await self.signed_in(request)
            self.check_form(found, csrf, changes=False)
            async with state.sessions() as session:
                endpoint = await actions.endpoint(session, self.viewer(found), endpoint_id)
                if endpoint is None:
                    return self.not_found(request, state, found, "endpoint")
                message, error = await actions.filter_verdict(
                    session, endpoint, event_type, payload, channels
                )
            return await self.endpoint_page(
                request,
                state,
                found,
                endpoint_id,
                message=message,
                error=error,
                status_code=200 if error is None else 422,
            )

        @router.post("/endpoints/{endpoint_id}/secret")
        async def reveal_secret(
            request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
        ) -> Response:
            """Show the current signing secret, to a session that may change the endpoint."""
            async with self.changing(request, endpoint_id, csrf) as (state, found, session, ep):
                if ep is None:
                    return self.not_found(request, state, found, "endpoint")
                secret = await admin_endpoints.current_secret(session, state.secret_box, ep.id)
            return await self.endpoint_page(request, state, found, endpoint_id, secret=secret)

        @router.post("/endpoints/{endpoint_id}/rotate")
        async def rotate_secret(
            request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
        ) -> Response:
            """Make a new signing secret current; the old ones keep signing for a day."""
            async with self.changing(request, endpoint_id, csrf) as (state, found, session, ep):
                if ep is None:
                    return self.not_found(request, state, found, "endpoint")
                secret = await admin_endpoints.rotate_secret(
                    session,
                    state.secret_box,
                    ep.id,
                    new_secret=None,
                    grace_period_s=ROTATION_GRACE_S,
                )
            return await self.endpoint_page(
                request, state, found, endpoint_id, message=ROTATED, secret=secret
            )

        @router.post("/endpoints/{endpoint_id}/test")
        async def send_test_event(
            request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
        ) -> Response:
            """Send the endpoint a ``hookpost.test`` event, whatever it subscribes to."""
            async with self.changing(request, endpoint_id, csrf) as (state, found, session, ep):
                if ep is None:
                    return self.not_found(request, state, found, "endpoint")
                delivery_id = await actions.send_test(session, ep)
            return see_other(self.path(f"/deliveries/{delivery_id}"))

        @router.get("/deliveries/{delivery_id}")
        async def delivery_page(request: Request, delivery_id: str) -> Response:
            """A delivery, the bytes its attempts sent, and each attempt; the page refreshes
            itself while the delivery is in motion."""
            state, found = await self.signed_in(request)
            async with state.sessions() as session:
                delivery = await actions.delivery(session, self.viewer(found), delivery_id)
                if delivery is None:
                    return self.not_found(request, state, found, "delivery")
                event, endpoint, attempts = await logs.delivery_context(session, delivery)
                body = await events.body_sent(session, event.id)
            return self.page(
                request,
                state,
                found,
                self.delivery_template,
                delivery=delivery,
                event=event,
                body=body,
                endpoint=endpoint,
                attempts=list(reversed(attempts)),
                live=actions.in_motion(delivery),
                message=request.query_params.get("message"),
            )

        @router.post("/deliveries/{delivery_id}/resend")
        async def resend(
            request: Request, delivery_id: str, csrf: Annotated[str | None, Form()] = None
        ) -> Response:
            state, found = await self.signed_in(request)
            self.check_form(found, csrf, changes=True)
            async with state.sessions() as session, session.begin():
                delivery = await actions.delivery(session, self.viewer(found), delivery_id)
                if delivery is None:
                    return self.not_found(request, state, found, "delivery")
                message = await actions.resend(session, delivery)
            return see_other(self.path(f"/deliveries/{delivery_id}?message={message}"))
