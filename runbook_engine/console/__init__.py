"""The web console (``runbook serve``): runs, gates and approvals by signed-in people.

A Starlette application with server-rendered jinja2 pages (autoescaped), one small
script for live progress (no build step; every page works without it), served by
uvicorn.  Modules, one job each:

:mod:`.settings`   what ``runbook serve`` was given (store, library, sign-in modes)
:mod:`.users`      local accounts: argon2 password hashes, API token hashes, roles
:mod:`.auth`       who is signed in and how: password, OIDC (authlib), proxy header, token
:mod:`.security`   CSRF tokens, security headers, the login rate limit
:mod:`.data`       every read and write of runs, gates and evidence (the store's one door)
:mod:`.launcher`   starting and continuing runs in the background (a worker queue later)
:mod:`.actions`    the acts (decide, vote, start), shared by the pages and the API
:mod:`.views`      the pages and forms
:mod:`.api`        the JSON API under ``/api/v1`` (bearer tokens)
:mod:`.openapi`    the API's OpenAPI 3.1 document, served at ``/openapi.json``
:mod:`.app`        the application: routes and middleware

A decision taken in the console is recorded with the library functions the CLI uses
(:func:`~runbook_engine.run.confirm.record_confirmation`,
:func:`~runbook_engine.run.approval.record_vote`) with ``auth_method`` set, so the journal
says ``authenticated: true`` and how; the run is then continued in the background as its
operator.
"""
