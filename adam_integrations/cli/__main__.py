"""``python -m adam_integrations.cli``: the ``adam`` command."""

from adam_integrations.cli import main

raise SystemExit(main())
