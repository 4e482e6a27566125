"""Path parameters shared by the routes, defined once."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

# UUIDs are case-insensitive (RFC 9562): any case is accepted, the canonical lowercase is used.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
UUID = re.compile(UUID_PATTERN)  # fullmatch: `$` must not admit a trailing newline
Uuid = Annotated[str, Path(pattern=UUID_PATTERN), AfterValidator(str.lower)]
