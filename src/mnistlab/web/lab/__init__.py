"""The lab: launch, watch and open runs in the browser, over the run store the CLI uses (FastAPI).

Its parts, each a module: `service.Lab` (what the routes call) made of `datasets` (the names a launch may
give), `launch` (a launch checked: its own fields, every config value by the Config's own code), `queue`
(queued rows of the store and the worker threads that train them through the sweep driver), `hub` (the
workers' progress to the browsers, Server-Sent Events), `views` (the runs folded by setup, one run, setups
compared, tables) and `models` (a finished run's report, inside view and draw page); the routers `api_runs`,
`api_models`, `api_chapter`, the /draw mount `draw`, the form's schema `form`; `app` assembles them.

Security: the lab trusts no one by default, as Jupyter does (`mnistlab.web.guard`). Every request, on a
loopback address too, needs the token printed at start; `MNISTLAB_LAB_TOKEN` sets it, `--no-token` drops it
on loopback only. On loopback a request must also name a loopback host (no DNS rebinding), and one that
changes anything must come from the lab's own origin. A launch names its dataset (the built-in ones, or
those given at start), never a path; the Ray cluster is the one given at start, never one a request names.
"""

from mnistlab.web.guard import TOKEN_COOKIE, choose_token
from mnistlab.web.lab.app import DEFAULT_PORT, PAGE, create_app, run
from mnistlab.web.lab.datasets import BUILTIN_DATASETS, parse_datasets
from mnistlab.web.lab.form import launch_schema, schema
from mnistlab.web.lab.hub import Hub
from mnistlab.web.lab.launch import LAUNCH_FIELDS, MAX_LAUNCH_BYTES, MAX_SEEDS
from mnistlab.web.lab.service import Lab

__all__ = [
    "BUILTIN_DATASETS",
    "DEFAULT_PORT",
    "LAUNCH_FIELDS",
    "MAX_LAUNCH_BYTES",
    "MAX_SEEDS",
    "PAGE",
    "TOKEN_COOKIE",
    "Hub",
    "Lab",
    "choose_token",
    "create_app",
    "launch_schema",
    "parse_datasets",
    "run",
    "schema",
]
