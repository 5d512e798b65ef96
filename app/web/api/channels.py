"""The channel kinds the server knows, with their settings' fields and capabilities."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask_login import current_user

from app import oauth
from app.channels import all_channels
from app.urls import public_base_url
from app.web.api.base import bp


@bp.get("/channels")
def channels_list():
    """Every channel kind the server knows: its settings' fields and what it can do (no secrets).

    A channel an inbox can be connected to by signing in lists the providers under
    ``oauth`` (names, as the contract says); admins also get ``sign_in``: each
    provider's label, whether its app is configured here and the redirect URI to
    register with it.
    """
    out = []
    base = public_base_url(current_app.config, request.host_url)
    known = oauth.providers(current_app.config, base) if current_user.is_admin else []
    for channel in all_channels():
        item = channel.describe()
        if channel.sign_in:
            item["oauth"] = list(channel.sign_in)
            if current_user.is_admin:
                item["sign_in"] = [p for p in known if p["name"] in channel.sign_in]
        out.append(item)
    return jsonify(out)
