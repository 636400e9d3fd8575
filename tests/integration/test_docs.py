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


async def test_each_problem_example_fits_its_status(anonymous: AsyncClient) -> None:
    spec = (await anonymous.get("/openapi.json")).json()
    codes = set()
    for methods in spec["paths"].values():
        for operation in methods.values():
            for status, response in operation["responses"].items():
                if status[0] not in "45":
                    continue
                example = response["content"]["application/problem+json"]["example"]
                assert example["status"] == int(status)
                assert example["type"].endswith(example["code"])
                codes.add((int(status), example["code"]))
    assert (401, "unauthorized") in codes
    assert (404, "tenant_not_found") in codes
    assert (422, "validation_error") in codes
