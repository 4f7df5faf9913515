"""``GET /docs``: the OpenAPI document of ``/v1/openapi.json`` as one page for people.

Rendered here, on the server, as plain HTML with a little CSS: no scripts and
nothing fetched from elsewhere. A Swagger or Redoc page would load its code from
a CDN, which a server on a private network (or a test without internet) cannot
reach, or else ship a megabyte of JavaScript inside the wheel. Each operation
shows its method and path, summary, parameters, request body, answers and
whether it needs a key; the body schemas follow, as the JSON in ``schemas/wire/``,
linked from wherever they are used.

Invariant: everything the page prints comes from the document (``openapi.py``),
escaped, so the page cannot drift from the API or inject markup.

Example::

    html = docs_page(openapi_document(app.routes))
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

_METHODS = ("get", "head", "post", "put", "patch", "delete")

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
pre { background: #f6f8fa; padding: .75rem; overflow-x: auto; }
section.op { border-top: 1px solid #ddd; padding: .5rem 0; }
.method { display: inline-block; min-width: 4.5rem; font-weight: bold; }
.get { color: #0a6; } .post { color: #06c; } .delete { color: #c30; } .head { color: #777; }
table { border-collapse: collapse; } td, th { text-align: left; padding: .1rem .8rem .1rem 0; vertical-align: top; }
.public { color: #777; font-size: 90%; }
"""


def docs_page(document: dict[str, Any]) -> str:
    """The whole page (UTF-8 text) for an OpenAPI 3.1 ``document``."""
    info = document.get("info", {})
    title = f"{info.get('title', 'API')} {info.get('version', '')}".strip()
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}: HTTP API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}: HTTP API</h1>",
        f"<p>{escape(info.get('description', ''))}</p>",
        '<p>Machine-readable: <a href="/v1/openapi.json"><code>/v1/openapi.json</code></a> (OpenAPI '
        f"{escape(str(document.get('openapi', '')))}). Send a project key as <code>Authorization: Bearer KEY</code>"
        " (make one with <code>mosslite keys create</code>).</p>",
        "<h2>Operations</h2>",
    ]
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                parts.append(_operation(method, path, item[method], document))
    parts.append("<h2>Bodies</h2>")
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        parts.append(
            f'<details id="schema-{escape(name)}"><summary><code>{escape(name)}</code>: '
            f"{escape(str(schema.get('description', schema.get('title', ''))))}</summary>"
            f"<pre>{escape(json.dumps(schema, indent=2, ensure_ascii=False))}</pre></details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _operation(method: str, path: str, operation: dict[str, Any], document: dict[str, Any]) -> str:
    public = ' <span class="public">(no key needed)</span>' if operation.get("security") == [] else ""
    out = [
        f'<section class="op" id="{escape(operation.get("operationId", ""))}">',
        f'<h3><span class="method {method}">{method.upper()}</span> <code>{escape(path)}</code>{public}</h3>',
        f"<p>{escape(operation.get('summary', ''))}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'required' if p.get('required') else 'optional'}</td><td>{escape(p.get('description', ''))}</td></tr>"
            for p in parameters
        )
        out.append(f"<table><tr><th>parameter</th><th>in</th><th></th><th></th></tr>{rows}</table>")
    body = operation.get("requestBody")
    if body:
        out.append(f"<p>Body: {_content(body.get('content', {}))}</p>")
    answers = []
    for status, answer in operation.get("responses", {}).items():
        answer = _resolve(document, answer)
        answers.append(
            f"<tr><td><b>{escape(status)}</b></td><td>{escape(answer.get('description', ''))}</td>"
            f"<td>{_content(answer.get('content', {}))}</td></tr>"
        )
    out.append(f"<table>{''.join(answers)}</table></section>")
    return "\n".join(out)


def _content(content: dict[str, Any]) -> str:
    """Media types and the schema each links to."""
    shown = []
    for media_type, spec in content.items():
        ref = spec.get("schema", {}).get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else ""
        link = f' <a href="#schema-{escape(name)}"><code>{escape(name)}</code></a>' if name else ""
        shown.append(f"<code>{escape(media_type)}</code>{link}")
    return ", ".join(shown)


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """A ``#/components/...`` reference's target (the shared error answers)."""
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    found: Any = document
    for part in ref[2:].split("/"):
        found = found.get(part, {}) if isinstance(found, dict) else {}
    return found if isinstance(found, dict) else node


__all__ = ["docs_page"]
