"""scripts/reader_errors.py's summary, checked on predictions written by hand."""
import numpy as np
import pytest

from script_loading import load_script


def test_report_counts_words_letters_terminals_and_confusions():
    report = load_script("reader_errors").error_report
    E = 3  # letters "abc", class 3 ends a word
    targets = [[0, E, E, E],   # "a"
               [1, 2, E, E],   # "bc"
               [2, 2, 0, E],   # "cca"
               [0, E, E, E]]   # "a"
    best = [[0, E, 1, 1],      # right: after the terminal does not count
            [1, 1, E, E],      # c read as b
            [2, 2, 0, 0],      # terminal missed
            [1, E, E, E]]      # a read as b
    r = report(best, targets, "abc", E)
    assert r["word_accuracy"] == 0.25
    assert r["by_length"] == {1: (0.5, 2), 2: (0.0, 1), 3: (0.0, 1)}
    assert r["by_position"] == {0: 0.75, 1: 0.5, 2: 1.0}
    assert r["letter_accuracy"] == pytest.approx(5 / 7)
    assert r["terminal_accuracy"] == 0.75
    assert r["confusions"] == {("c", "b"): 1, ("a", "b"): 1}


def test_a_letter_read_as_the_end_and_bad_shapes():
    report = load_script("reader_errors").error_report
    r = report(np.array([[3, 3]]), np.array([[0, 3]]), "abc", 3)
    assert r["confusions"] == {("a", "<end>"): 1} and r["word_accuracy"] == 0.0
    with pytest.raises(ValueError, match="must be the same"):
        report(np.zeros((2, 5)), np.zeros((2, 4)), "abc", 3)
