"""Pitboss — the Streamlit entry point: `python -m streamlit run app/main.py`.

It lives in `app/`, not beside `pages/`, so Streamlit's automatic `pages/` discovery never exposes a
page: the navigation is built per user on every run from `app.ui.navigation.PAGES` (see app/ui/shell.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.ui.shell import run  # noqa: E402

run()
