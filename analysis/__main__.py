"""``python -m analysis RUN_DIR ...``: the same as ``python -m analysis.report``."""

from analysis.report import app

if __name__ == "__main__":
    app(prog_name="python -m analysis")
