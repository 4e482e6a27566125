"""How a console page refuses: a page a person can read, with the status the API would give."""

from __future__ import annotations

from indelible import domain


class ConsoleError(Exception):
    """Answer with the error page: `title` and `detail` are shown as they are."""

    def __init__(self, status: int, title: str, detail: str, *, viewer=None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.viewer = status, title, detail, viewer


class SignInRequired(Exception):
    """No live session: the person is sent to the sign-in page (with why, when there is one)."""

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


def refusal(error: domain.DomainError) -> tuple[int, str]:
    """(status, title) of a domain refusal, as the API answers it (api/routes/discrepancies.py);
    the detail is the refusal's own text either way."""
    if isinstance(error, domain.TransitionRefusedError):
        return 409, "Transition refused"
    if isinstance(error, domain.PermissionRefusedError):
        return 403, "Forbidden"
    if isinstance(error, domain.UnknownDiscrepancyError):
        return 404, "Unknown discrepancy"
    if isinstance(error, domain.InvalidCommandError):
        return 422, "Invalid request"
    return 409, "Refused"
