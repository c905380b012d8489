"""Sinks: where batches of canonical records are delivered. Every sink has the same shape."""
