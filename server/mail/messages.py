"""Mail content: one Jinja template pair per kind of mail, ``templates/mail/<name>.txt`` and ``.html``.

The text template sets the subject with ``{% set subject = "…" %}`` at its top level, so a
mail's wording lives in one place. HTML is autoescaped; the text part is not.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import msgspec

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates" / "mail"


class Mail(msgspec.Struct, frozen=True):
    """One message to one recipient: what the send job carries and the development mailbox keeps."""

    to: str
    subject: str
    text: str
    html: str


@cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.FileSystemLoader(TEMPLATES)
    text = jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701
    html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)
    return text, html


def render_mail(name: str, to: str, context: dict[str, Any]) -> Mail:
    """The mail ``name`` for ``to``, with ``context`` in both parts."""
    text_env, html_env = _environments()
    module = text_env.get_template(f"{name}.txt").make_module(context)
    subject = str(getattr(module, "subject", "")).strip()
    if not subject:
        raise ValueError(f"templates/mail/{name}.txt sets no subject")
    html = html_env.get_template(f"{name}.html").render({**context, "subject": subject})
    return Mail(to=to, subject=subject, text=str(module).strip() + "\n", html=html)
