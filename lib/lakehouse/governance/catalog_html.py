"""The catalog as one static, self-contained HTML page (no CDN: it opens offline)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jinja2 import Environment, select_autoescape

if TYPE_CHECKING:
    from lakehouse.governance.catalog import CatalogEntry

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Lakehouse data catalog</title>
<style>
body{font-family:system-ui,sans-serif;margin:0;display:flex;color:#1d2733}
nav{width:20rem;height:100vh;overflow:auto;position:sticky;top:0;background:#f3f5f8;padding:1rem;box-sizing:border-box}
nav input{width:100%;padding:.4rem;margin-bottom:.6rem;box-sizing:border-box}
nav a{display:block;text-decoration:none;color:#1d2733;padding:.15rem 0;font-size:.9rem}
nav .layer{font-weight:600;margin-top:.6rem;text-transform:uppercase;font-size:.75rem;color:#5b6776}
main{padding:1rem 2rem;flex:1;max-width:70rem}
section{border-bottom:1px solid #dde3ea;padding:1rem 0}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #dde3ea;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f5f8}
.tag{display:inline-block;border-radius:.6rem;padding:0 .5rem;font-size:.75rem;background:#e4ecf7;margin-right:.3rem}
.pii-personal{background:#fbd5d5}.pii-pseudonymised{background:#fdecc8}
.muted{color:#5b6776;font-size:.85rem}code{font-size:.8rem}
</style></head>
<body>
<nav>
<input id="filter" placeholder="Filter tables, columns, owners..." oninput="filterTables(this.value)">
{% for layer, group in groups %}<div class="layer">{{ layer }}</div>
{% for e in group %}<a href="#{{ e.name }}" data-entry="{{ e.name }}">{{ e.name }}</a>{% endfor %}
{% endfor %}
</nav>
<main>
<h1>Data catalog</h1>
<p class="muted">Lake {{ lake_root }} &middot; {{ entries|length }} tables &middot; generated {{ generated_at }}</p>
{% for e in entries %}
<section id="{{ e.name }}" data-search="{{ e.search }}">
<h2>{{ e.name }} {% for t in e.tags %}<span class="tag {{ 'pii-personal' if t == 'pii' else '' }}">{{ t }}</span>{% endfor %}</h2>
<p>{{ e.description or "(no description)" }}</p>
<table>
<tr><th>Layer / domain</th><td>{{ e.layer }} / {{ e.domain }} ({{ e.kind }})</td></tr>
<tr><th>Owner</th><td>{{ e.owner or "(none)" }}{% if e.owner_contact %} &lt;{{ e.owner_contact }}&gt;{% endif %}</td></tr>
<tr><th>Path</th><td><code>{{ e.path }}</code></td></tr>
<tr><th>Rows / version</th><td>{{ "{:,}".format(e.row_count) if e.row_count is not none else "not built" }}{% if e.version is not none %} / v{{ e.version }}{% endif %}</td></tr>
<tr><th>Last update</th><td>{{ e.last_update or "" }} {{ e.last_operation or "" }}</td></tr>
<tr><th>Upstream</th><td>{% for u in e.upstream %}<a href="#{{ u }}">{{ u }}</a> {% endfor %}</td></tr>
<tr><th>Downstream</th><td>{% for d in e.downstream %}<a href="#{{ d }}">{{ d }}</a> {% endfor %}</td></tr>
{% if e.erasure_key %}<tr><th>Erasure key</th><td><code>{{ e.erasure_key }}</code></td></tr>{% endif %}
</table>
{% if e.columns %}<table><tr><th>Column</th><th>Type</th><th>Description</th><th>PII</th></tr>
{% for c in e.columns %}<tr><td><code>{{ c.name }}</code></td><td>{{ c.type or "" }}</td><td>{{ c.description }}</td>
<td>{% if c.pii != "none" %}<span class="tag pii-{{ c.pii }}">{{ c.pii }}</span>{% endif %}</td></tr>{% endfor %}
</table>{% endif %}
{% if e.expectations %}<table><tr><th>Expectation</th><th>Action</th><th>Predicate</th></tr>
{% for x in e.expectations %}<tr><td>{{ x.name }}</td><td>{{ x.action }}</td><td><code>{{ x.predicate }}</code></td></tr>{% endfor %}
</table>{% endif %}
</section>
{% endfor %}
</main>
<script>
function filterTables(text){
  const words=text.toLowerCase().split(/\\s+/).filter(Boolean);
  document.querySelectorAll("section").forEach(s=>{
    const hit=words.every(w=>s.dataset.search.includes(w));
    s.style.display=hit?"":"none";
    const link=document.querySelector('nav a[data-entry="'+s.id+'"]');
    if(link){link.style.display=hit?"":"none";}
  });
}
</script>
</body></html>
"""

_environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))


def render_html(entries: Sequence[CatalogEntry], *, lake_root: str, generated_at: dt.datetime) -> str:
    views = [_view(entry) for entry in entries]
    groups: dict[str, list[dict]] = {}
    for view in views:
        groups.setdefault(view["layer"], []).append(view)
    return _environment.from_string(_TEMPLATE).render(
        entries=views, groups=list(groups.items()), lake_root=lake_root, generated_at=generated_at.isoformat()
    )


def _view(entry: CatalogEntry) -> dict:
    from dataclasses import asdict

    view = asdict(entry)
    words = [entry.name, entry.description, entry.owner or "", entry.domain, entry.layer, *entry.tags]
    words += [f"{c.name} {c.description} {c.pii}" for c in entry.columns]
    view["search"] = " ".join(words).lower()
    return view
