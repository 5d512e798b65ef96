"""The channel kinds the server knows, with their settings' fields and capabilities."""

from __future__ import annotations

from flask import jsonify

from app.channels import all_channels
from app.web.api.base import bp


@bp.get("/channels")
def channels_list():
    """Every channel kind the server knows: its settings' fields and what it can do (no secrets)."""
    return jsonify([channel.describe() for channel in all_channels()])
