"""HTML pages from one template folder (``airflow_mlops/templates``): Jinja2 with autoescape on.

Every page the project writes or serves (the model-test, drift and validation reports, the MLOps view's
pages, the alert mail) extends ``base.html`` and its one style sheet, so every value put in a page is escaped
by the template engine, never by hand. Code hands templates data, not markup. The few pieces of markup that
come from the project itself (a chart drawn by matplotlib) are wrapped in :class:`markupsafe.Markup` where
they are made, so they say where trust was granted.

Cells of the shared ``table`` macro may be plain values, a :class:`Link`, a :class:`Tag` (a styled label) or a
:class:`Group` of them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from airflow_mlops.tables import fmt


@dataclass(frozen=True)
class Link:
    """A link: the app's own pages open in place (inside the UI's frame), other sites in a new tab."""

    href: str
    text: str

    @property
    def external(self) -> bool:
        return self.href.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Tag:
    """A short label with a style class (a verdict, a state, an alias badge)."""

    text: str
    cls: str = ""


@dataclass(frozen=True)
class Group:
    """Several cell parts in one cell, with a separator between them."""

    parts: tuple[Any, ...]
    sep: str = " "


@dataclass(frozen=True)
class Row:
    """A table row with a style class (``fail``, ``warn``) for the whole row."""

    cells: tuple[Any, ...]
    cls: str = ""


@functools.cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_mlops", "templates"),
        autoescape=True,  # every template, whatever its name: a page is never built unescaped
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["fmt"] = fmt
    env.tests.update(
        link=lambda v: isinstance(v, Link),
        tag=lambda v: isinstance(v, Tag),
        group=lambda v: isinstance(v, Group),
        row=lambda v: isinstance(v, Row),
    )
    return env


def render(template: str, **context: Any) -> str:
    """The page ``template`` (a file of ``airflow_mlops/templates``) with ``context``, every value escaped."""
    return environment().get_template(template).render(**context)


def trusted(markup: str) -> Any:
    """Markup the project made itself (an SVG chart drawn by matplotlib): shown as it is."""
    from markupsafe import Markup

    return Markup(markup)
