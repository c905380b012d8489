"""Looking around the logs: search, tail, context and patterns over the archive and the engines."""
