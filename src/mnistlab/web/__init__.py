"""The two web apps and what they share.

`serve` is the draw page's app (`mnistlab serve`, and the lab's draw pages); `lab` (a package) is the lab. Both
use `guard` (the loopback names, the Host check, the lab's token, the security headers), `errors` (the one error
shape, `{"error", "field"}`), `pages` (their page, web/static/ and the API page written from /openapi.json),
`bodies` (bounded request bodies) and `server` (the listening socket). The pages are written from templates/
(`templating`): index.html and lab.html; their code and styles are the files of static/, which both apps serve.
"""
