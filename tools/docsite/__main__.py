"`python tools/docsite ...` (or `python -m docsite ...` with tools/ on the path) runs the command line."
import sys
from pathlib import Path

if not __package__:  # run as a folder: its modules must not be importable as top-level ones (`markdown`, ...)
    package_dir = Path(__file__).resolve().parent
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != package_dir]
    sys.path.insert(0, str(package_dir.parent))

from docsite.cli import main  # noqa: E402 (after the path is set)

if __name__ == "__main__":
    sys.exit(main())
