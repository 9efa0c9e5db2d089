"""``python -m navarch._navctl`` is the ``navctl`` command."""

from navarch._navctl import main

raise SystemExit(main())
