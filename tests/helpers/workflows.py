"""GitHub Actions workflows checked against GitHub's own schema (check-jsonschema's vendored copy), offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers.servers import require_program


def assert_valid_for_github(workflow: Path) -> None:
    """The workflow file passes check-jsonschema's `vendor.github-workflows` schema."""
    checker = require_program(str(Path(sys.executable).parent / "check-jsonschema"), "check-jsonschema (test extra)")
    result = subprocess.run([checker, "--builtin-schema", "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
