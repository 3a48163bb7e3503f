"""/draw/{run_id}/...: `mnistlab serve`'s app for that run, mounted in the lab (its page asks its API by relative paths)."""

import asyncio

from fastapi.responses import RedirectResponse

from mnistlab.core.errors import MnistlabError
from mnistlab.web import errors

MAX_RUN_ID_DIGITS = 18  # every number of 18 digits is a SQLite integer (the largest has 19)


class DrawPages:
    """ASGI app: the run's draw app (`ModelCache.draw_app`), built on first use, answering under /draw/RUN_ID/."""

    def __init__(self, models):
        self.models = models

    async def __call__(self, scope, receive, send):
        path = scope["path"][len(scope.get("root_path", "")) :]
        run_text, _, rest = path.lstrip("/").partition("/")
        # isdigit() alone takes "²" (which int() refuses); a run id is ASCII digits, and at most SQLite's integers.
        if not (run_text.isascii() and run_text.isdigit() and len(run_text) <= MAX_RUN_ID_DIGITS):
            return await errors.refusal("the draw page is /draw/RUN_ID/", 404)(scope, receive, send)
        if not rest and not path.endswith("/"):
            where = f"{scope.get('root_path', '')}/{run_text}/"
            return await RedirectResponse(where, status_code=307)(scope, receive, send)
        try:
            app = await asyncio.to_thread(self.models.draw_app, int(run_text))
        except MnistlabError as error:
            return await errors.error_response(error)(scope, receive, send)
        child = {**scope, "root_path": f"{scope.get('root_path', '')}/{run_text}"}
        return await app(child, receive, send)
