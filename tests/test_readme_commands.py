"""Every `nnlite train ... --option ...` command in README.md's ```sh blocks is
accepted as written: it parses, and its recipe builds with those options (the
options a user copies to reproduce a seed's figures must not drift from the
recipes' names)."""
import os
import shlex

import pytest

from nnlite import cli, cli_train
from nnlite.models import digit_sequence, recipe_module

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def shell_commands(path):
    """The commands of the ```sh blocks of `path`, continuation lines joined."""
    commands, block, pending = [], False, ""
    with open(path, encoding="utf-8") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("```"):
                block = stripped == "```sh"
                continue
            if not block:
                continue
            pending += stripped
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
            else:
                commands.append(pending)
                pending = ""
    return commands


TRAIN_WITH_OPTIONS = [c for c in shell_commands(README)
                      if c.startswith("nnlite train ") and "--option" in c]


def test_the_readme_gives_commands_with_options():
    assert len(TRAIN_WITH_OPTIONS) >= 3, TRAIN_WITH_OPTIONS


@pytest.mark.parametrize("command", TRAIN_WITH_OPTIONS)
def test_readme_train_command_builds_its_recipe(command, monkeypatch):
    monkeypatch.setattr(digit_sequence, "MEAN_BOX_SAMPLES", 8)  # box_bias=mean, quickly
    args = cli.build_parser().parse_args(shlex.split(command)[1:])
    given = dict(pair.split("=", 1) for pair in args.option)
    recipe = cli_train._recipe(recipe_module(args.model), args)
    assert recipe.model is not None and recipe.optimizer is not None
    if "lr" in given:
        assert recipe.optimizer.param_groups[0]["lr"] == float(given["lr"])
