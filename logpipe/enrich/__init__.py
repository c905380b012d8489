"""Enrichment: request context, static labels, endpoint templates and message keys."""
