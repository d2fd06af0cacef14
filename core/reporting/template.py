"""The report page (Jinja2, autoescaped): inline CSS, inline SVG, no scripts, no external URL."""

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="semscale {{ version }}">
<title>{{ title }}</title>
<style>
:root { --ink: #1d2330; --muted: #5b6472; --rule: #d9dde3; --band: #f5f7fa; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: var(--ink);
       background: #fff; }
header { padding: 20px 32px 12px; border-bottom: 1px solid var(--rule); background: var(--band); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
nav { padding: 8px 32px; border-bottom: 1px solid var(--rule); font-size: 13px; }
nav div { display: flex; flex-wrap: wrap; gap: 2px 14px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
nav .group { font-weight: 600; }
main { padding: 8px 32px 40px; max-width: 1200px; }
h2 { margin: 28px 0 4px; font-size: 19px; border-bottom: 2px solid var(--ink); padding-bottom: 2px; }
h2 + p.sub { margin: 0 0 8px; color: var(--muted); }
h3 { margin: 22px 0 6px; font-size: 16px; }
figure { margin: 10px 0 14px; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 12px; }
.table-wrap { overflow-x: auto; margin: 6px 0 14px; }
table { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
caption .src { font-weight: 400; color: var(--muted); margin-left: 6px; font-family: ui-monospace, monospace; }
th, td { border-bottom: 1px solid var(--rule); padding: 3px 8px; text-align: left; vertical-align: top; white-space: nowrap; }
th { background: var(--band); position: sticky; top: 0; }
td.num { text-align: right; }
p.note { color: var(--muted); font-size: 12px; margin: 0 0 10px; }
pre { background: var(--band); border: 1px solid var(--rule); padding: 8px 10px; overflow-x: auto; font-size: 12px;
      white-space: pre-wrap; overflow-wrap: anywhere; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
footer { padding: 16px 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); }
</style>
</head>
<body>
<header>
<h1>{{ title }}</h1>
<p>{{ subtitle }}</p>
</header>
<nav>
{% for g in groups %}
<div><span class="group">{{ g.title }}</span>{% for s in g.sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</div>
{% endfor %}
</nav>
<main>
{% macro render_table(t) %}
<div class="table-wrap">
<table id="{{ t.id }}" data-source="{{ t.source }}">
<caption>{{ t.caption }}<span class="src">{{ t.source }}</span></caption>
<thead><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}
<tr>{% for cell in row %}{% if cell.numeric %}<td class="num" data-value="{{ cell.value }}">{{ cell.text }}</td>{% else %}<td>{{ cell.text }}</td>{% endif %}{% endfor %}</tr>
{% endfor %}
</tbody>
</table>
</div>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% endmacro %}
{% for g in groups %}
<section class="group" id="{{ g.id }}" data-group="{{ g.title }}">
{% if groups|length > 1 %}<h2>{{ g.title }}</h2>{% endif %}
{% if g.subtitle %}<p class="sub">{{ g.subtitle }}</p>{% endif %}
{% for s in g.sections %}
<section id="{{ s.id }}">
<h3>{{ s.title }}</h3>
{% for p in s.paragraphs %}<p>{{ p }}</p>
{% endfor %}
{% if s.bullets %}<ul>{% for b in s.bullets %}<li>{{ b }}</li>{% endfor %}</ul>{% endif %}
{% for svg, caption in s.figures %}
<figure>{{ svg|svg }}<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}
{% for caption, text, folded in s.code if not folded %}
<p class="note">{{ caption }}</p>
<pre>{{ text }}</pre>
{% endfor %}
{% for t in s.tables %}{{ render_table(t) }}{% endfor %}
{% for t in s.details %}
<details><summary>{{ t.caption }} ({{ t.rows|length }} rows)</summary>{{ render_table(t) }}</details>
{% endfor %}
{% for caption, text, folded in s.code if folded %}
<details><summary>{{ caption }}</summary><pre>{{ text }}</pre></details>
{% endfor %}
</section>
{% endfor %}
</section>
{% endfor %}
</main>
<footer>Written by semscale {{ version }} on {{ generated }}. Every number is read from the run's files named beside
each table; this page loads nothing from the network.</footer>
</body>
</html>
"""
