"""A CI run that skips or deselects the browser tests must fail, not pass quietly."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


ONE_FAST_TEST = "config/tests/test_settings.py::test_env_helpers_parse_and_refuse"


def _pytest(*args, **env):
    # Start from an environment with no requirement set, whatever this run itself requires.
    base = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_REQUIRE")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env={**base, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_required_run_without_browser_tests_fails():
    result = _pytest("-m", "not browser", ONE_FAST_TEST, HANDOFF_REQUIRE_BROWSER_TESTS="1")
    assert result.returncode == 1, result.stdout
    assert "1 passed" in result.stdout
    assert "no 'browser' test ran and passed" in result.stdout


def test_an_ordinary_run_may_leave_them_out():
    result = _pytest("-m", "not browser", ONE_FAST_TEST)
    assert result.returncode == 0, result.stdout
