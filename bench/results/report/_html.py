"""HTML pieces of the dashboard: the page shell, its CSS, tables, figures.

Every piece of text that comes from a result file goes through `esc`; the
functions here take text and return markup, so a caller never builds a tag by
hand around unescaped text.
"""
from __future__ import annotations

import html
import math
from typing import Iterable, Sequence
from urllib.parse import quote

CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d5dbe1; --head: #eef2f6; --accent: #1f5f9e;
        --good: #e3f4e1; --bad: #fbe3e1; --badfg: #a4221a; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background: #17324d; color: #fff; padding: 0.8rem 1.5rem; }
header a { color: #cfe3ff; }
header .title { font-size: 1.35rem; font-weight: 650; margin: 0; }
header nav { margin-top: 0.35rem; font-size: 0.9rem; display: flex; flex-wrap: wrap;
             gap: 0.1rem 0.9rem; }
header nav a { white-space: nowrap; }
header nav a.here { color: #fff; font-weight: 650; text-decoration: none; }
main { max-width: 1180px; margin: 0 auto; padding: 0.5rem 1.5rem 3rem; }
h1 { font-size: 1.6rem; margin: 1.2rem 0 0.3rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; padding-bottom: 0.2rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.02rem; margin: 1.3rem 0 0.4rem; }
p.note, .note { color: var(--muted); font-size: 0.88rem; margin: 0.3rem 0 0.7rem; }
a { color: var(--accent); }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.86em;
       background: #f3f5f7; padding: 0 0.2em; border-radius: 3px; }
.scroll { overflow-x: auto; margin: 0.4rem 0 0.8rem; }
table { border-collapse: collapse; font-size: 0.86rem; }
th, td { border: 1px solid var(--line); padding: 0.22rem 0.55rem; vertical-align: top; }
td { overflow-wrap: anywhere; }      /* a long path or hash wraps instead of widening the page */
thead th { background: var(--head); text-align: left; position: sticky; top: 0; }
th[scope=row] { background: #f7f9fb; text-align: left; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
         overflow-wrap: normal; }
td.num .sub { display: block; font-size: 0.84em; white-space: normal; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.best { font-weight: 700; }
td.better { background: var(--good) !important; }
td.worse { background: var(--bad) !important; }
td.bad { color: var(--badfg); font-weight: 700; }
td.group { background: #fff !important; font-weight: 600; }
.ci { color: var(--muted); }
.ratio { color: var(--muted); }
figure { margin: 0.6rem 0 1.2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 0.86rem; margin-top: 0.2rem; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 0.1rem 1rem; font-size: 0.9rem; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def href(name: str) -> str:
    """A relative link to a file the site itself wrote (names are already safe; quote anyway)."""
    return esc(quote(name))


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: thousands separated when large, 3 significant digits otherwise."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def td(text: str, cls: str = "", title: str = "", raw: bool = False, attrs: str = "") -> str:
    """A table cell; `raw` when text is markup made here (already escaped)."""
    a = (f' class="{esc(cls)}"' if cls else "") + (f' title="{esc(title)}"' if title else "") + attrs
    return f"<td{a}>{text if raw else esc(text)}</td>"


def table(head: Sequence[str], rows: Iterable[Sequence[str]], caption: str = "") -> str:
    """head: column titles (text); rows: lists of cell markup made by `td` or `th_row`."""
    out = ['<div class="scroll"><table>']
    if caption:
        out.append(f"<caption class=\"note\">{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for h in head) + "</tr></thead>")
    out.append("<tbody>")
    out.extend("<tr>" + "".join(r) + "</tr>" for r in rows)
    out.append("</tbody></table></div>")
    return "\n".join(out)


def th_row(text: str, raw: bool = False, rowspan: int = 1) -> str:
    span = f' rowspan="{rowspan}"' if rowspan > 1 else ""
    return f'<th scope="row"{span}>{text if raw else esc(text)}</th>'


def link(name: str, text: str) -> str:
    return f'<a href="{href(name)}">{esc(text)}</a>'


def figure(src: str, alt: str, caption: str, width: int, height: int) -> str:
    return (f'<figure><img src="{href(src)}" alt="{esc(alt)}" width="{width}" height="{height}">'
            f'<figcaption>{esc(caption)}</figcaption></figure>')


def page(title: str, heading: str, body: str, nav: Sequence[tuple[str, str]], here: str = "") -> str:
    """A whole page.  nav: (file, text) pairs; the data: URL icon spares the browser a 404."""
    current = ' class="here" aria-current="page"'
    links = "".join(f'<a href="{href(f)}"{current if f == here else ""}>{esc(t)}</a>'
                    for f, t in nav)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="fuse-writeback-bench report">
<link rel="icon" href="data:,">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><p class="title">{esc(heading)}</p><nav>{links}</nav></header>
<main>
{body}
</main>
</body>
</html>
"""
