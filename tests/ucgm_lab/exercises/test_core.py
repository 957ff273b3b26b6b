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


def test_not_answered_yet_shows_no_formula(learner_mode):
    for e in ex.list_exercises():
        message = repr(ex.check(e.name, _stub)) if e.shortcuts else ""
        for tier in e.hints:
            assert tier not in message, (e.name, tier)


def test_hints_come_in_three_tiers_and_the_last_points_to_the_solution(capsys):
    for level in (1, 2, 3):
        ex.hint("beta_mode", level)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        f"Hint {k}/3 for 'beta_mode'" for k in (1, 2, 3)
    ]
    assert "theta1 - 1" not in lines[0] and "theta1 - 1" in lines[2]
    assert "show_solution" in lines[2] and "hint('beta_mode', 2)" in lines[0]
    with pytest.raises(ValueError, match="1, 2 or 3"):
        ex.hint("beta_mode", 4)


def test_a_wrong_answer_shows_only_the_first_hint():
    e = ex.get_exercise("beta_mode")
    with pytest.raises(ex.ExerciseError) as info:
        ex.check("beta_mode", lambda a, b: a / (a + b))
    assert e.hints[0] in str(info.value) and e.hints[2] not in str(info.value)


def test_answer_hands_on_the_learners_function_or_the_reference(learner_mode, monkeypatch):
    def mine(theta1, theta2):
        return (theta1 - 1) / (theta1 + theta2 - 2)

    assert ex.answer("beta_mode", mine) is mine
    with pytest.raises(ex.ExerciseError, match="not answered yet"):
        ex.answer("beta_mode", _stub)
    monkeypatch.setenv("UCGM_LAB_SOLUTIONS", "1")
    assert ex.answer("beta_mode", _stub) is solutions.beta_mode


def test_progress_shows_done_and_next(learner_mode, monkeypatch, tmp_path):
    from ucgm_lab.exercises import tracker as progress_module

    monkeypatch.setattr(progress_module, "_STATES", {})
    path = tmp_path / "progress.json"
    monkeypatch.setenv("UCGM_LAB_PROGRESS_FILE", str(path))
    first = ex.list_exercises()[0].name
    assert ex.progress().next[1] == first
    ex.check("beta_mode", solutions.beta_mode)
    ex.check(first, _stub)
    shown = ex.progress()
    assert shown.done == 1 and shown.next[1] == first
    text = repr(shown)
    assert "[x] beta_mode" in text and f"Next: {first!r}" in text
    # another kernel reads the same file; a corrupt file is set aside, never deleted
    monkeypatch.setattr(progress_module, "_STATES", {})
    assert ex.progress().done == 1
    path.write_text("{not json", encoding="utf-8")
    with pytest.warns(UserWarning, match="moved"):
        assert ex.progress().done == 0
    assert (tmp_path / "progress.json.bak").read_text(encoding="utf-8") == "{not json"
