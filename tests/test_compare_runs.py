"""scripts/compare_runs.py --at: the seed-study table, checked against values
written by hand."""
import json

import pytest

from script_loading import load_script


def _run(tmp_path, name, rows):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"eval": rows}))
    return str(folder)


def test_table_gives_each_run_at_each_step_and_the_spread(tmp_path, capsys):
    a = _run(tmp_path, "a", [{"step": 100, "word_accuracy": 0.1, "loss": 2.0},
                             {"step": 200, "word_accuracy": 0.5, "loss": 1.0},
                             {"step": 300, "word_accuracy": 0.4, "loss": 1.1}])
    b = _run(tmp_path, "b", [{"step": 100, "word_accuracy": 0.3, "loss": 1.5}])
    load_script("compare_runs").main([a, b, "--labels", "s0", "s1", "--metrics",
                                      "word_accuracy", "--at", "100", "300"])
    lines = capsys.readouterr().out.splitlines()
    assert "| s0 | 0.100 | 0.400 | 0.500 (200) |" in lines
    assert "| s1 | 0.300 | - | 0.300 (100) |" in lines  # b never reached step 300
    assert "| mean | 0.200 | 0.400 | 0.400 |" in lines
    assert "| min | 0.100 | 0.400 | 0.300 |" in lines
    assert "| max | 0.300 | 0.400 | 0.500 |" in lines


def test_lower_is_better_picks_the_smallest(tmp_path, capsys):
    a = _run(tmp_path, "a", [{"step": 1, "box_error": 5.0}, {"step": 2, "box_error": 3.0},
                             {"step": 3, "box_error": 4.0}])
    load_script("compare_runs").main([a, "--metrics", "box_error", "--at", "3",
                                      "--lower-is-better"])
    assert "| a | 4.000 | 3.000 (2) |" in capsys.readouterr().out


def test_each_metric_has_its_own_direction(tmp_path, capsys):
    # an error or a loss is best at its smallest, an accuracy at its largest,
    # in one table run; naming metrics overrides the guess
    a = _run(tmp_path, "a", [{"step": 1, "box_error": 5.0, "character_accuracy": 0.2},
                             {"step": 2, "box_error": 3.0, "character_accuracy": 0.1}])
    load_script("compare_runs").main([a, "--metrics", "box_error", "character_accuracy",
                                      "--at", "2"])
    out = capsys.readouterr().out
    assert "| a | 3.000 | 3.000 (2) |" in out and "| a | 0.100 | 0.200 (1) |" in out
    load_script("compare_runs").main([a, "--metrics", "box_error", "character_accuracy",
                                      "--at", "2", "--lower-is-better", "character_accuracy"])
    out = capsys.readouterr().out
    assert "| a | 3.000 | 5.000 (1) |" in out and "| a | 0.100 | 0.100 (2) |" in out


def test_needs_out_or_at(tmp_path):
    a = _run(tmp_path, "a", [{"step": 1, "word_accuracy": 0.5}])
    with pytest.raises(SystemExit):
        load_script("compare_runs").main([a])
