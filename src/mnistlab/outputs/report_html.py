"""The HTML of the reports: one self-contained page of sections, tables of escaped cells, embedded PNGs."""

import base64
import html
import pathlib

from mnistlab.analysis import tables


def embed(path):
    return "data:image/png;base64," + base64.b64encode(pathlib.Path(path).read_bytes()).decode("ascii")


class Markup(str):
    """A table cell that is HTML already (a greyed book figure), not text to escape."""


def html_table(header, rows):
    """A table of ROWS under HEADER's column names; HEADER None: a table of name and value rows, with no header row."""
    body = "".join(
        "<tr>" + "".join(f"<td>{c if isinstance(c, Markup) else html.escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    if header is None:
        return f"<table><tbody>{body}</tbody></table>"
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def book_cell(setup):
    """A setup's book figure: with its verdict where the setup is held against the book, else greyed with the reason."""
    if setup["book_test"] is None:
        return "n/a"
    figure = f"{setup['book_test']:.1f} ({setup['book_where']})"
    if setup["book_comparable"]:
        return figure
    return Markup(
        f"<span class='not-comparable' style='color:{tables.GREYED}' title='{html.escape(setup['book_reason'])}'>{html.escape(figure)}"
        f"<br><small>not comparable: {html.escape(setup['book_reason'])}</small></span>"
    )


def page(title, sections):
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}table{border-collapse:collapse;font-size:.85em}"
        "td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left}th{background:#f3f3f3}"
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, content in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{content}")
    parts.append("</body></html>")
    return "\n".join(parts)


def image(path, alt):
    return f"<img src='{embed(path)}' alt='{html.escape(alt)}'>"


def figures_dir(out):
    out = pathlib.Path(out)
    directory = out.with_name(out.stem + "_files")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def percent_text(value):
    return "n/a" if value is None else f"{100 * value:.2f}%"


def interval_text(summary):
    return "n/a" if summary["ci_low"] is None else f"[{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"


def number_text(value, digits=2):
    return "n/a" if value is None else f"{value:.{digits}f}"


def yes_no_text(value):
    """A yes-or-no that may not be known: yes, no or n/a."""
    return "n/a" if value is None else ("yes" if value else "no")


def welch_cells(comparison):
    """(difference, its 95% CI, p) of a Welch comparison (`stats.compare`), in points, as a report shows them."""
    difference = "n/a" if comparison.get("difference") is None else f"{comparison['difference']:+.2f}"
    interval = (
        "n/a" if comparison.get("ci_low") is None else f"[{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}]"
    )
    p_value = "n/a" if comparison.get("p_value") is None else f"{comparison['p_value']:.3g}"
    return difference, interval, p_value
