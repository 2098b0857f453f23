"""A git source's URL token never shows: not in its name, its settings or its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli.common import make_source
from controller.sources.base import SourceError
from controller.sources.git import GitSource, redact_url

SECRET = "ghp_s3cretT0ken"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            f"https://ci:{SECRET}@git.example/fleet.git",
            "https://ci:***@git.example/fleet.git",
            id="user-and-token",
        ),
        pytest.param(
            f"http://:{SECRET}@127.0.0.1:8080/r?x=1", "http://:***@127.0.0.1:8080/r?x=1", id="port"
        ),
        pytest.param(
            "ssh://git@git.example:22/fleet", "ssh://git@git.example:22/fleet", id="no-pw"
        ),
        pytest.param("https://git.example/fleet.git", "https://git.example/fleet.git", id="plain"),
        pytest.param("/srv/fleet", "/srv/fleet", id="path"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_unreachable_repository_error_hides_the_token(tmp_path: Path) -> None:
    url = f"http://ci:{SECRET}@127.0.0.1:9/fleet.git"
    source = GitSource(url, tmp_path)
    for read in (source.revision, source.snapshot):
        with pytest.raises(SourceError) as caught:
            read()
        assert SECRET not in str(caught.value)
        assert SECRET not in source.name
    assert "ci:***@127.0.0.1:9" in source.name


def test_cli_source_setting_hides_the_token(tmp_path: Path) -> None:
    url = f"https://ci:{SECRET}@git.example/fleet.git"
    setting = make_source(None, url, "main", ".", False, tmp_path)
    assert SECRET not in setting.source.name
    assert SECRET not in repr(setting.settings)
    assert setting.source.url == url
