"""Pure stages from raw bytes to canonical records: framing, validation, format profiles, normalisation."""
