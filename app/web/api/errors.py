"""API errors: ``{"error": {"code": "...", "message": "...", ...}}`` with a fitting status."""

from __future__ import annotations

from flask import jsonify


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}``.

    ``extra`` keys are added to the ``error`` object (a refused send's details,
    the messages a new-activity guard held back, ...).
    """

    def __init__(self, status: int, code: str, message: str, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def api_error_response(exc: ApiError):
    """The blueprint's handler for :class:`ApiError`: the JSON body and the status."""
    body = {"error": {"code": exc.code, "message": exc.message, **exc.extra}}
    return jsonify(body), exc.status
