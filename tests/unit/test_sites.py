"""Both sites serve the pages they share from one definition in ``sites.site.Site``: a
route registered twice, or written again in a site's own module, would drift (it did)."""

from fastapi.routing import APIRoute

from hookpost.console.site import SITE as CONSOLE
from hookpost.portal.site import SITE as PORTAL
from hookpost.sites.site import Site

SHARED = {
    ("GET", "/endpoints/{endpoint_id}"),
    ("POST", "/endpoints/{endpoint_id}/url"),
    ("POST", "/endpoints/{endpoint_id}/filter-test"),
    ("POST", "/endpoints/{endpoint_id}/secret"),
    ("POST", "/endpoints/{endpoint_id}/rotate"),
    ("POST", "/endpoints/{endpoint_id}/test"),
    ("GET", "/deliveries/{delivery_id}"),
    ("POST", "/deliveries/{delivery_id}/resend"),
}


def _routes(site: Site) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for route in site.router.routes:
        assert isinstance(route, APIRoute)
        for method in route.methods:
            key = (method, route.path.removeprefix(site.prefix))
            assert key not in found, f"{key} is registered twice on {site.prefix or '/'}"
            found[key] = route
    return found


def test_the_shared_pages_are_defined_once_for_both_sites() -> None:
    for site in (CONSOLE, PORTAL):
        routes = _routes(site)
        assert routes.keys() >= SHARED
        for key in SHARED:
            assert routes[key].endpoint.__qualname__.startswith("Site._register."), key
        own = {key for key, route in routes.items() if key not in SHARED}
        for key in own:
            assert not routes[key].endpoint.__qualname__.startswith("Site."), key


def test_each_site_serves_under_its_own_prefix() -> None:
    assert {route.path for route in PORTAL.router.routes if isinstance(route, APIRoute)} >= {
        f"/portal{path}" for _, path in SHARED
    }
    assert CONSOLE.prefix == ""
