"""scripts/digit_box_errors.py's summary, checked on boxes written by hand."""
import numpy as np
import pytest

from script_loading import load_script


def test_report_splits_the_error_by_coordinate_and_digit_count():
    report = load_script("digit_box_errors").box_error_report
    targets = [[100, 60, 28, 140],
               [120, 70, 28, 56]]
    predicted = [[102, 60, 28, 143],   # x +2, width +3
                 [118, 71, 28, 56]]    # x -2, y +1
    r = report(predicted, targets, digit_counts=[5, 2])
    # squared errors: x 4 and 4, y 0 and 1, height 0, width 9 and 0
    assert r["box_error"] == pytest.approx((4 + 9 + 4 + 1) / 8)
    x, y = r["coordinates"]["x_centre"], r["coordinates"]["y_centre"]
    height, width = r["coordinates"]["height"], r["coordinates"]["width"]
    assert (x["squared_error"], x["bias"], x["target_spread"]) == (4.0, 0.0, 10.0)
    assert (y["squared_error"], y["bias"]) == (0.5, 0.5)
    assert (height["squared_error"], height["target_spread"]) == (0.0, 0.0)
    assert (width["squared_error"], width["bias"], width["target_spread"]) == (4.5, 1.5, 42.0)
    assert r["by_digits"] == {2: (pytest.approx(5 / 4), 1), 5: (pytest.approx(13 / 4), 1)}


def test_no_digit_counts_and_bad_input():
    report = load_script("digit_box_errors").box_error_report
    assert "by_digits" not in report(np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"must both be \(N, 4\)"):
        report(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="N = 0"):
        report(np.zeros((0, 4)), np.zeros((0, 4)))
    with pytest.raises(ValueError, match="digit_counts"):
        report(np.zeros((2, 4)), np.zeros((2, 4)), digit_counts=[1, 2, 3])


def test_ridge_probe_recovers_an_affine_map_and_rejects_mismatched_rows():
    probe = load_script("digit_box_errors").ridge_probe
    rng = np.random.default_rng(0)
    weights, offset = rng.normal(size=(6, 4)), np.array([100.0, 60.0, 28.0, 140.0])
    train = rng.normal(size=(200, 6))
    fresh = rng.normal(size=(7, 6))
    predicted = probe(train, train @ weights + offset, fresh, ridge=1e-9)
    np.testing.assert_allclose(predicted, fresh @ weights + offset, atol=1e-6)
    with pytest.raises(ValueError, match="3 feature rows for 2 boxes"):
        probe(np.zeros((3, 6)), np.zeros((2, 4)), fresh)
