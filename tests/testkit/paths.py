"""Where the repository is, for every test module and kit (one place to compute it)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
