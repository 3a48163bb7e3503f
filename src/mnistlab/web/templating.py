"""The pages, written from their templates (web/templates/): the draw page (index.html), the lab (lab.html) and the
shared site's page (site.html).

Each page extends page.html, which holds what every page has (its head, the icon, its styles and scripts from
static/, named once per page); the two draw pages include the one pad column (pad.html), and the lab its views
(templates/lab/). The apps write their page once, when they are made; `mnistlab site` writes its page into the site.
"""

import pathlib

import jinja2

TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"
DRAW_PAGE = "index.html"
LAB_PAGE = "lab.html"
SITE_PAGE = "site.html"


def page_html(name: str) -> str:
    """The page NAME (a template of web/templates/), as a browser gets it."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a name a page forgot to set fails here, not as an empty title
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(name).render()
