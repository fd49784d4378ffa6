import pytest

from polymodal.train.callbacks import EarlyStopping


def _stop_epoch(seq, **kw):
    es = EarlyStopping("val/recall@1", **kw)
    for epoch, value in enumerate(seq, start=1):
        if es.update(value, step=epoch):
            return epoch, es
    return None, es


def test_stops_after_patience_evals_without_improvement():
    epoch, es = _stop_epoch([0.1, 0.3, 0.35, 0.34, 0.36, 0.2, 0.9], mode="max", patience=2, min_delta=0.02)
    # 0.35 improves on 0.3 by > 0.02; 0.34 and 0.36 do not beat 0.35 + 0.02 -> stop at epoch 5
    assert epoch == 5
    assert es.best == 0.35 and es.best_step == 3


def test_min_mode_and_state_round_trip():
    epoch, es = _stop_epoch([1.0, 0.8, 0.81, 0.79, 0.9, 0.95, 0.99], mode="min", patience=3)
    assert epoch == 7 and es.best == 0.79 and es.best_step == 4
    again = EarlyStopping("x")
    again.load_state_dict(es.state_dict())
    assert again == es


def test_no_patience_never_stops_but_tracks_best():
    epoch, es = _stop_epoch([0.5, 0.4, 0.3, 0.2], mode="max", patience=None)
    assert epoch is None and es.best == 0.5


@pytest.mark.parametrize("value", [float("nan")])
def test_nan_is_never_an_improvement(value):
    es = EarlyStopping("m", mode="min", patience=1)
    es.update(1.0, 1)
    assert es.update(value, 2) is True
