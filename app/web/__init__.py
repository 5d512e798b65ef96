"""HTTP only: pages, the JSON API, webhooks and authentication. Thin by design."""
