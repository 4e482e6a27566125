"""The console's pages, one module per area; each router's paths are under /console."""

from indelible.console.pages import (actions, auditor, cases, dashboard, policy, reports, rules,
                                     signin)

ROUTERS = (signin.router, dashboard.router, cases.router, actions.router, policy.router,
           rules.router, reports.router, auditor.router)
