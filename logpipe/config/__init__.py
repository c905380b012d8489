"""The agent's configuration: the typed model (model.py), the loader of YAML files and of the
`ship` flags (load.py, flags.py), its JSON Schema (schema.py) and the sink checks of
`logpipe config validate` (check.py). Nothing here is imported by `logpipe --help`."""
