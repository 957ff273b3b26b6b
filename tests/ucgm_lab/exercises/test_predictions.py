"""Predict-then-check items: the guess is judged against the outcome the notebook passes in."""

import pytest

import ucgm_lab.exercises as ex
from ucgm_lab.exercises import predictions


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(predictions, "_GUESSES", {})
    monkeypatch.setattr(predictions, "_REVEALED", set())
    monkeypatch.delenv("UCGM_LAB_TEST_MODE", raising=False)
    monkeypatch.delenv("UCGM_LAB_SOLUTIONS", raising=False)


RUN = {0.0: 0.31, 0.25: 0.22, 0.5: 0.19, 0.75: 0.24, 1.0: 0.41}  # a made-up outcome


def test_there_are_at_least_24_checked_items_over_at_least_8_notebooks():
    items = [*ex.list_exercises(), *ex.list_predictions()]
    assert len(items) >= 24
    assert len({item.notebook for item in items}) >= 8
    for item in ex.list_predictions():
        assert len(item.hints) == 3 and len(item.choices) >= 2


def test_a_right_guess_is_accepted_with_the_measured_values():
    ex.predict("best_kappa_at_4_steps", 0.5)
    verdict = ex.check_prediction("best_kappa_at_4_steps", RUN)
    assert verdict.startswith("Prediction 'best_kappa_at_4_steps': right (0.5)")
    assert "0.5 -> 0.190" in verdict
    assert repr(verdict) == str(verdict)  # shown without quotes


def test_the_truth_comes_from_the_outcome_not_a_stored_number():
    ex.predict("best_kappa_at_4_steps", 0.5)
    with pytest.raises(ex.ExerciseError, match="the run says 0.25"):
        ex.check_prediction("best_kappa_at_4_steps", {**RUN, 0.25: 0.1})


def test_wrong_guesses_get_different_messages():
    messages = []
    for guess in (0.0, 1.0):
        ex.predict("best_kappa_at_4_steps", guess)
        with pytest.raises(ex.ExerciseError) as info:
            ex.check_prediction("best_kappa_at_4_steps", RUN)
        assert f"you predicted {guess!r}, the run says 0.5" in str(info.value)
        messages.append(str(info.value))
    assert "first-order" in messages[0] and "overshoots" in messages[1]


def test_a_guess_outside_the_choices_is_refused():
    with pytest.raises(ex.ExerciseError, match="not one of the choices"):
        ex.predict("best_kappa_at_4_steps", 0.3)
    assert "recorded 'lambda = 1'" in ex.predict("few_step_at_one_nfe", "lambda = 1")


def test_a_guess_changed_after_seeing_the_result_is_marked():
    ex.predict("best_kappa_at_4_steps", 0.0)
    with pytest.raises(ex.ExerciseError):
        ex.check_prediction("best_kappa_at_4_steps", RUN)
    assert "after the result was shown" in ex.predict("best_kappa_at_4_steps", 0.5)
    verdict = ex.check_prediction("best_kappa_at_4_steps", RUN)
    assert "right, but predicted after seeing the result" in verdict
    assert "done (predicted after seeing the result)" in repr(ex.progress())


def test_no_guess_is_an_error_for_a_learner_and_a_report_in_solutions_mode(monkeypatch):
    assert "no guess yet" in ex.predict("broken_constraint", None)
    with pytest.raises(ex.ExerciseError, match="no guess recorded"):
        ex.check_prediction("broken_constraint", "(c)")
    monkeypatch.setenv("UCGM_LAB_SOLUTIONS", "1")
    assert "the run says '(c)'" in ex.check_prediction("broken_constraint", "(c)")


def test_nearest_choice_and_threshold_items():
    ex.predict("edm_gamma_at_zero", 2)
    assert "right" in ex.check_prediction("edm_gamma_at_zero", 1.9999)
    ex.predict("kappa_order", "yes")
    with pytest.raises(ex.ExerciseError, match="not AB2"):
        ex.check_prediction("kappa_order", 0.87)


def test_hints_work_for_predictions(capsys):
    ex.hint("kappa_order", 3)
    assert "Adams-Bashforth" not in capsys.readouterr().out  # tier 3 is the reasoning
    ex.hint("kappa_order", 2)
    assert "Adams-Bashforth" in capsys.readouterr().out
