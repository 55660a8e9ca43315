"""Every ```python block of README.md and docs/*.md runs as written, each in a
fresh namespace (in a scratch directory), and a print whose line ends in a
comment prints what the comment says (the text before its first ": ")."""
import ast
import glob
import os

import pytest

import nnlite.backends

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs",
                                                                           "*.md")))


def python_blocks(path):
    """(first line number, source) of each ```python block of `path`."""
    blocks, current, start = [], None, 0
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if current is None and line.strip() == "```python":
                current, start = [], number + 1
            elif current is not None and line.strip() == "```":
                blocks.append((start, "".join(current)))
                current = None
            elif current is not None:
                current.append(line)
    return blocks


SNIPPETS = [(os.path.relpath(path, ROOT), start, source)
            for path in DOCUMENTS for start, source in python_blocks(path)]


def promised_prints(source):
    """The outputs the comments on print(...) calls promise, in order."""
    lines = source.splitlines()
    promised = []
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "print"):
            last = lines[node.end_lineno - 1]
            if "  # " in last:
                promised.append(last.split("  # ", 1)[1].split(": ", 1)[0].strip())
    return promised


def test_the_readme_has_snippets_to_run():
    assert sum(path == "README.md" for path, _, _ in SNIPPETS) >= 5


@pytest.mark.parametrize("path, start, source", SNIPPETS,
                         ids=[f"{path}:{start}" for path, start, _ in SNIPPETS])
def test_snippet_runs_as_written(path, start, source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a snippet that saves a file writes it here
    # a snippet may set process-wide switches; the other tests keep theirs
    monkeypatch.setattr(nnlite.backends, "conv_algorithm", nnlite.backends.conv_algorithm)
    exec(compile(source, f"{path}:{start}", "exec"), {"__name__": "__snippet__"})
    printed = capsys.readouterr().out.splitlines()
    promised = promised_prints(source)
    assert len(printed) >= len(promised)
    for line, expected in zip(printed[-len(promised):] if promised else [], promised):
        assert line == expected, f"{path}:{start} printed {line!r}; its comment says " \
                                 f"{expected!r}"
