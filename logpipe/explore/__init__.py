"""Exploring records: the shared filter language (`filters`), search, tail and context.

Nothing heavy is imported here, so the CLI and other commands may import it freely.
"""
