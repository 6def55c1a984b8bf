"""`python -m app <command>`: the Pitboss command line."""

from app.cli import main

raise SystemExit(main())
