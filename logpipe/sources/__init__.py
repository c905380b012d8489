"""Sources produce RawBatches: runs of complete lines with the position just after them."""
