"""The embedded Parquet archive: layout, atomic writer, range ledger, compaction, read views."""
