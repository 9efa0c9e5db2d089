"""``python -m navarch`` is the ``navarch`` command."""

from navarch._cli import main

raise SystemExit(main())
