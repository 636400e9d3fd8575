"""The README lists every setting."""

from pathlib import Path

from hookpost.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_in_the_readme() -> None:
    text = README.read_text()
    for name in Settings.model_fields:
        assert f"`HOOKPOST_{name.upper()}`" in text, name
