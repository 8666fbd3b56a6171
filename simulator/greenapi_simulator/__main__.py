"""``python -m greenapi_simulator``: the simulator on a port (see ``--help``)."""

from greenapi_simulator import main

raise SystemExit(main())
