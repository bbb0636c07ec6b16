"""pytest plugin (pyproject.toml: `addopts = -p readiness.pytest_env`): the suite runs as the
embedded default, so keys come from READINESS_VAR_DIR (generated on first use) unless the
environment gives them.

A plugin, not a conftest: pytest-django imports the settings before any conftest is read, and
the settings decide there whether keys may come from files (see READINESS_EMBEDDED in
readiness/settings.py). Worker processes the tests start inherit the variable.
"""

import os

os.environ.setdefault("READINESS_EMBEDDED", "true")
