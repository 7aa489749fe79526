"""The course's settings, read from _config.yml at the repository root: one place for them."""

from __future__ import annotations

import dataclasses
import pathlib

import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class CourseConfig:
    repository_url: str
    branch: str
    distribution: str
    install_ref: str

    @property
    def install_source(self) -> str:
        """The pip requirement Colab installs the course package from."""
        return f"{self.distribution} @ git+{self.repository_url}@{self.install_ref}"

    def colab_url(self, notebook_path: str) -> str:
        slug = self.repository_url.removeprefix("https://github.com/")
        return f"https://colab.research.google.com/github/{slug}/blob/{self.branch}/{notebook_path}"


def load_config(root: pathlib.Path = REPO_ROOT) -> CourseConfig:
    path = root / "_config.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        return CourseConfig(
            repository_url=data["repository"]["url"].rstrip("/"),
            branch=data["repository"]["branch"],
            distribution=data["course"]["distribution"],
            install_ref=data["course"]["install_ref"],
        )
    except (KeyError, TypeError) as missing:
        raise ValueError(f"{path} needs repository.url, repository.branch, course.distribution and "
                         f"course.install_ref; {missing} is missing") from None
