import pytest

import ucgm_lab.exercises as ex


@pytest.fixture
def rejects():
    """``rejects(name, wrong, *words)``: the check raises ExerciseError naming every word."""

    def _rejects(name, wrong, *words):
        with pytest.raises(ex.ExerciseError) as info:
            ex.check(name, wrong)
        message = str(info.value)
        for word in words:
            assert word in message, f"{word!r} not in the message:\n{message}"
        assert "Hint:" in message
        return message

    return _rejects


@pytest.fixture
def accepts():
    def _accepts(name, answer):
        result = ex.check(name, answer)
        assert result.passed and result.answered and not result.used_reference
        assert result.cases >= 2
        return result

    return _accepts


@pytest.fixture(autouse=True)
def _progress_in_tmp(monkeypatch, tmp_path):
    """Checks record the learner's progress; keep it out of the home folder and per test."""
    from ucgm_lab.exercises import tracker

    monkeypatch.setenv("UCGM_LAB_PROGRESS_FILE", str(tmp_path / "progress.json"))
    monkeypatch.setattr(tracker, "_STATES", {})
