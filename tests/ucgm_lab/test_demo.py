from ucgm_lab.cli import main
from ucgm_lab.demo import few_step_time_points


def test_demo_quick_run_writes_a_report(tmp_path, capsys):
    main(
        [
            "demo",
            "--steps",
            "30",
            "--few-step-steps",
            "10",
            "--samples",
            "200",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    report, summary = tmp_path / "report.html", tmp_path / "summary.md"
    assert report.is_file() and summary.is_file()
    html = report.read_text()
    assert "plotly" in html.lower() and "W2 to the data versus NFE" in html
    text = summary.read_text()
    assert "| lambda=0, kappa=0.5 |" in text and "| lambda=1, rho=1 |" in text and "floor" in text
    assert "Report:" in capsys.readouterr().out


def test_demo_rejects_bad_options(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["demo", "--dataset", "nope"])
    assert "unknown dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--steps", "0"])


def test_few_step_time_points():
    assert few_step_time_points(1) == [0.999]
    assert few_step_time_points(2) == [0.999, 0.5]
    assert few_step_time_points(4) == [0.999, 0.5, 0.333333, 0.166667]
