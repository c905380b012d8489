from __future__ import annotations

from logpipe.cli.app import main

main()
