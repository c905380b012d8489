"""The read side: the filter language (`filters`), the canned catalog (`catalog`, `sql/`, `es/`),
time expressions, rendering, the pattern miner, and search, tail and context over both backends.

Nothing heavy is imported here, so the CLI and other commands may import it freely.
"""
