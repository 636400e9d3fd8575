"""The error root: every refusal hookpost defines descends from ``HookpostError``, names a
code the one table knows, and no two refusals share a name."""

import ast
import importlib
import pkgutil
import uuid
from collections import Counter
from pathlib import Path

import pytest

import hookpost
from hookpost.access import OPERATOR, Viewer
from hookpost.errors import STATUS, AdminOnly, HookpostError, NotFound, ReadOnly, status_of

SOURCE = Path(hookpost.__file__).parent


def _every_module() -> None:
    for module in pkgutil.walk_packages([str(SOURCE)], prefix="hookpost."):
        if module.name != "hookpost.__main__":
            importlib.import_module(module.name)


def _subclasses(root: type) -> set[type]:
    found: set[type] = set()
    for sub in root.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_refusal_has_a_code_the_table_answers() -> None:
    _every_module()
    refusals = {cls for cls in _subclasses(HookpostError) if cls.__module__.startswith("hookpost")}
    assert len(refusals) >= 35
    unknown = {cls.__qualname__: cls.code for cls in refusals if cls.code not in STATUS}
    assert not unknown


def test_every_exception_class_in_the_source_descends_from_the_root() -> None:
    _every_module()
    refusals = {cls.__name__ for cls in _subclasses(HookpostError)}
    defined: list[str] = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(base, ast.Name) and base.id.endswith(("Error", "Exception"))
                for base in node.bases
            ):
                defined.append(node.name)
    assert set(defined) <= refusals | {"HookpostError"}
    assert [name for name, count in Counter(defined).items() if count > 1] == []


def test_a_viewer_sees_only_its_tenant_and_a_neighbour_is_not_found() -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    viewer = Viewer(tenant_id=mine, may_change=False)
    assert viewer.seen("endpoint", "ep_x", "found", mine) == "found"
    with pytest.raises(NotFound) as neighbour:
        viewer.seen("endpoint", "ep_x", "found", theirs)
    with pytest.raises(NotFound) as missing:
        viewer.seen("endpoint", "ep_x", None, None)
    assert str(neighbour.value) == str(missing.value)
    assert status_of(neighbour.value) == 404
    with pytest.raises(ReadOnly):
        viewer.require_change()
    with pytest.raises(AdminOnly):
        viewer.require_operator()
    assert OPERATOR.seen("delivery", "dlv_x", "found", theirs) == "found"
