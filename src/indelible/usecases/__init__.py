"""Use cases: every change a caller can ask of the ledger, defined once.

HTTP routes, the NATS consumer, the CLI (and the escalation engine, outbox dispatcher, report
worker and console to come) only translate their input into a principal and a domain
command, call one of these, and translate the result or the refusal back. Each use case
decides under the log-head lock through the appender, so the rule it enforces exists once.

    discrepancies.report            open a discrepancy, or record a re-report (amendment)
    discrepancies.close_as_matched  the engine matched it: auto-close (ingestion)
    discrepancies.move              a lifecycle transition
    discrepancies.assign / comment / change_severity / attach_evidence
    keys.issue_key / revoke_key     API keys of a tenant
    policy.set_severity_policy      the tenant's severity thresholds (optimistic concurrency)
    reports.request_report / report_status / report_file / generate / verify_report_file /
        set_schedule / cancel_schedule   compliance reports (issue 13)

`principal.py` holds who asks (`Principal`) and the port use cases write through (`Ledger`
over the service's appender; `DirectLedger` on a one-shot command's connection). Creating a
tenant is the one change that cannot go through the appender — it creates the log the
appender locks — so it stays `store.tenants.create_tenant`.
"""
