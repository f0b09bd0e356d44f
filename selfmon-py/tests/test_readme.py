"""The README's "Python hosts" example runs as written."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def example() -> str:
    text = README.read_text()
    section = text.split("## Python hosts", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python example in the README's Python hosts section"
    return match.group(1)


def test_the_readme_example_is_at_most_fifteen_lines_of_code() -> None:
    lines = [l for l in example().splitlines() if l.strip()]
    assert len(lines) <= 15, len(lines)


def test_the_readme_example_runs_as_written(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    cwd = os.getcwd()
    out = io.StringIO()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(example(), "README.md", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(cwd)
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("SUCCESS ['selfmon-issues/0001-"), lines
    assert lines[1].endswith(" SUCCESS 1"), lines
    assert (tmp_path / "selfmon-issues").is_dir()
