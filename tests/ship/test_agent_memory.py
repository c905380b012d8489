"""The agent process's memory settings (logpipe/memory.py), checked in a fresh interpreter each."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

PROBE = """
import importlib.util, sys
from logpipe.memory import tune_agent_process
tune_agent_process()
import polars as pl, pyarrow as pa, pyarrow.compute as pc
table = pa.table({"level": ["INFO", "ERROR", "INFO"]})
assert pc.value_counts(table["level"]).to_pylist()
assert pl.from_arrow(table).height == 3
print(pa.default_memory_pool().backend_name, "pandas" in sys.modules, importlib.util.find_spec("pandas") is not None)
"""


def test_agent_keeps_pandas_out_and_uses_the_system_pool() -> None:
    """pyarrow and polars work without loading pandas; Arrow allocates from the system pool."""
    assert importlib.util.find_spec("pandas"), "pandas comes with the dev extras: the case that matters"
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    # pandas is still findable (polars probes for it), just never loaded.
    assert out == ["system", "False", "True"]


def test_other_commands_keep_the_defaults() -> None:
    """Without tune_agent_process (queries, notebooks) pyarrow loads pandas as usual."""
    assert importlib.util.find_spec("pandas")
    probe = "import sys, pyarrow as pa, pyarrow.compute as pc; pc.unique(pa.array([1])); print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True"]
