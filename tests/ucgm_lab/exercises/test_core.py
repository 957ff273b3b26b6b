import pytest

import ucgm_lab.exercises as ex
from ucgm_lab.exercises import solutions


def _stub(*args, **kwargs):
    raise NotImplementedError


@pytest.fixture
def learner_mode(monkeypatch):
    monkeypatch.delenv("UCGM_LAB_TEST_MODE", raising=False)
    monkeypatch.delenv("UCGM_LAB_SOLUTIONS", raising=False)


def test_there_are_at_least_twelve_exercises_each_with_a_solution_and_hint():
    exercises = ex.list_exercises()
    assert len(exercises) >= 12
    assert len({e.name for e in exercises}) == len(exercises)
    for e in exercises:
        assert e.hint and callable(e.solution)
        assert e.notebook[:2] in {"01", "02", "03", "04", "05", "15"}


def test_unanswered_stub_is_reported_without_raising(learner_mode):
    result = ex.check("beta_mode", _stub)
    assert not result.passed and not result.answered and result.cases == 0
    assert "not answered yet" in repr(result)
    assert not bool(result)


@pytest.mark.parametrize("env", ["UCGM_LAB_SOLUTIONS", "UCGM_LAB_TEST_MODE"])
def test_solutions_mode_checks_the_reference_and_says_so(learner_mode, monkeypatch, env):
    monkeypatch.setenv(env, "1")
    assert ex.solutions_mode()
    result = ex.check("beta_mode", _stub)
    assert result.passed and result.used_reference and not result.answered
    assert "reference solution was checked instead" in repr(result)


def test_a_given_answer_is_checked_even_in_solutions_mode(monkeypatch):
    monkeypatch.setenv("UCGM_LAB_SOLUTIONS", "1")
    with pytest.raises(ex.ExerciseError, match="Beta"):
        ex.check("beta_mode", lambda a, b: a / (a + b))


def test_a_crash_in_the_answer_is_reported_with_its_type():
    def broken(theta1, theta2):
        return theta1 / undefined_name  # noqa: F821

    with pytest.raises(ex.ExerciseError, match="NameError"):
        ex.check("beta_mode", broken)


def test_non_callable_answer_and_unknown_name_are_clear():
    with pytest.raises(ex.ExerciseError, match="pass your function"):
        ex.check("beta_mode", 0.5)
    with pytest.raises(KeyError, match="beta_mode"):
        ex.get_exercise("beta_mod")


def test_show_solution_prints_the_reference_source(capsys):
    ex.show_solution("beta_mode")
    out = capsys.readouterr().out
    assert out.startswith("def beta_mode(")
    assert "theta1 - 1" in out


def test_importing_the_exercises_does_not_import_sympy():
    import subprocess
    import sys

    code = "import sys, ucgm_lab.exercises; print('sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_reference_solution_passes_its_own_check():
    for e in ex.list_exercises():
        assert ex.check(e.name, getattr(solutions, e.solution.__name__)).passed
