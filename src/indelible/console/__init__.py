"""The web console: server-rendered pages for compliance teams and auditors under /console.

- `app.py` builds the console's FastAPI application, mounted by the API (api/app.py);
- `sessions.py` signs people in (a personal API key today; OIDC would be one more method)
  and resumes their server-side session on every page;
- `security.py` holds the browser-facing defences: CSP and other headers, CSRF tokens,
  the session gate;
- `pages/` one module per area; each calls the use cases (usecases/) and store queries the
  API calls, so roles, tenant walls and refusals are the API's own;
- `render.py`, `timeline.py`, `templates/`, `static/`: the markup, one stylesheet and one
  small script of our own (no CDN, nothing fetched at run time).
"""
