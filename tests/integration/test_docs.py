"""The OpenAPI docs are the admin dashboard: every route documented, typed and authorisable."""

from httpx import AsyncClient


async def test_every_route_is_documented(anonymous: AsyncClient) -> None:
    spec = (await anonymous.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    operations = [
        (path, method, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 20
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        assert operation.get("summary"), where
        assert operation.get("description"), where
        assert operation.get("tags"), where
        assert any(status.startswith("2") for status in operation["responses"]), where
        if path.startswith("/v1/"):
            assert operation.get("security") == [{"HTTPBearer": []}], where
            assert "401" in operation["responses"], where
        if "requestBody" in operation:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            assert "$ref" in schema, where


async def test_docs_pages_are_served(anonymous: AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        response = await anonymous.get(page)
        assert response.status_code == 200
        assert "openapi.json" in response.text
