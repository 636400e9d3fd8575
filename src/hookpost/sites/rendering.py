"""What the console's and the portal's pages share: the templates, rendering under the
Content-Security-Policy, redirects after a form, cursor pages, and telling whether the
browser sent a request from another origin's page (the requests that make a session)."""

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
ASSETS = Path(__file__).parent / "static"
PAGE_SIZE = 50


def content_security_policy(*, frame_ancestors: str = "'none'", images: str = "") -> str:
    """Only this origin, no inline script or style; who may frame the page, and where images
    may come from besides this origin."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: {images}".strip(),
            f"frame-ancestors {frame_ancestors}",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


CSP = content_security_policy()


def render(
    request: Request,
    template: str,
    status_code: int = 200,
    *,
    csp: str = CSP,
    **context: Any,
) -> Response:
    answer = TEMPLATES.TemplateResponse(
        request, template, {"ids": ids, **context}, status_code=status_code
    )
    answer.headers["content-security-policy"] = csp
    answer.headers["x-content-type-options"] = "nosniff"
    answer.headers["cache-control"] = "no-store"
    return answer


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def local(moment: datetime) -> str:
    """A moment as a datetime-local form field shows it (UTC, to the minute)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


async def page_of(
    session: AsyncSession, query: Any, model: Any, prefix: ids.Prefix, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """A page of ``query``, newest first, after ``cursor`` (the last id shown), and the next
    page's cursor; a cursor that is not one of this list starts from the top."""
    after = ids.decode(prefix, cursor) if cursor else None
    if after is not None:
        query = query.where(model.id < after)
    rows = (await session.scalars(query.order_by(model.id.desc()).limit(PAGE_SIZE + 1))).all()
    if len(rows) <= PAGE_SIZE:
        return rows, None
    return rows[:PAGE_SIZE], ids.encode(prefix, rows[PAGE_SIZE - 1].id)


def _own_hosts(request: Request) -> set[str]:
    """The host[:port] the browser asked for: ``Host``, or what a proxy that rewrote it
    forwarded. Another origin's page can set neither on a request it makes the browser send."""
    forwarded = request.headers.get("x-forwarded-host", "")
    hosts = {request.headers.get("host", ""), *(part.strip() for part in forwarded.split(","))}
    return {host.lower() for host in hosts if host}


def from_another_origin(request: Request) -> bool:
    """Whether the browser says a page of another origin sent this request: by its
    ``Sec-Fetch-Site`` (the browser's own verdict, right behind any proxy), else by its
    ``Origin``, else by its ``Referer``. A request with none of them is not a browser's
    (browsers send one of them with every form they post) and is let through."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is not None:
        return origin == "null" or urlsplit(origin).netloc.lower() not in _own_hosts(request)
    referer = request.headers.get("referer")
    return referer is not None and urlsplit(referer).netloc.lower() not in _own_hosts(request)


def opened_from_another_site(request: Request) -> bool:
    """Whether a link was followed from another site's page, or fetched rather than opened
    (an image, a script, ``fetch()``), by the browser's fetch metadata. A link of the same
    site (another subdomain, the product that embeds the portal) is opened as usual."""
    mode = request.headers.get("sec-fetch-mode")
    return request.headers.get("sec-fetch-site") == "cross-site" or (
        mode is not None and mode != "navigate"
    )
