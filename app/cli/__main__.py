"""``python -m app.cli``: the ``snn-explorer`` command (what torch.distributed.run starts)."""

from app.cli import main

raise SystemExit(main())
