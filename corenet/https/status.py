"""HTTP status codes by name, as httpx's ``codes``: ``codes.NOT_FOUND == 404``, the lower-case
names too (``codes.not_found``), ``str(codes.OK) == "200"``, and the class tests
``codes.is_success(200)``, each code's ``phrase``. The names and reason phrases are those of
the running Python's ``http.HTTPStatus`` (3.13's new names, ``CONTENT_TOO_LARGE`` and the like,
beside the old)."""
from __future__ import annotations

from enum import IntEnum
from http import HTTPStatus
from typing import Any


class _Codes(IntEnum):
    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def get_reason_phrase(cls, value: int) -> str:
        """The standard reason phrase of `value`, or "" for a code without one."""
        return REASONS.get(int(value), "")

    @classmethod
    def is_informational(cls, value: int) -> bool:
        return 100 <= value <= 199

    @classmethod
    def is_success(cls, value: int) -> bool:
        return 200 <= value <= 299

    @classmethod
    def is_redirect(cls, value: int) -> bool:
        return 300 <= value <= 399

    @classmethod
    def is_client_error(cls, value: int) -> bool:
        return 400 <= value <= 499

    @classmethod
    def is_server_error(cls, value: int) -> bool:
        return 500 <= value <= 599

    @classmethod
    def is_error(cls, value: int) -> bool:
        return 400 <= value <= 599


#: The reason phrase of each standard code, for responses that came without one (HTTP/2):
#: HTTPStatus's, but RFC 2324's "I'm a teapot" (as httpx has it)
REASONS = {int(s): s.phrase for s in HTTPStatus} | {418: "I'm a teapot"}

# Made from HTTPStatus through enum's functional API, which type checkers do not follow.
_make_enum: Any = _Codes
codes: Any = _make_enum(
    "codes", [(name, int(status)) for name, status in HTTPStatus.__members__.items()],
    module=__name__)
for _name, _status in HTTPStatus.__members__.items():
    setattr(codes, _name.lower(), int(_status))  # httpx's: a plain int
for _member in codes:
    _member.phrase = REASONS[int(_member)]      # httpx's codes.NOT_FOUND.phrase
