import importlib.util

from tests.scale.helpers import REPO


def test_throughput_benchmark_reports_images_memory_and_mfu(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "scale_throughput", REPO / "benchmarks" / "scale_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(
        ["--model", "TiT-tiny/1", "--latent-size", "4", "--batch-size", "4", "--steps", "2"]
        + ["--warmup", "1", "--cpu", "--peak-tflops", "1.0", "--json", str(tmp_path / "r.json")]
    )
    report = module.run(args)
    assert report["images_per_second"] > 0 and report["peak_memory_gib"] > 0
    # lambda = 0 with zeta > 0: one back-propagated forward and one EMA-teacher forward per image
    assert report["network_images_per_step"] == {"grad": 4, "no_grad": 4}
    assert 0 < report["mfu"] < 1 and report["peak_source"] == "--peak-tflops"
    # the memory planner beside the bytes autograd kept in a training forward
    assert 0.85 < report["planner_over_measured_saved"] < 1.15
    assert report["planner_total_gib"] > report["planner_saved_activations_gib"] > 0


def test_throughput_grid_prints_one_row_per_setting_with_the_planner(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "scale_throughput", REPO / "benchmarks" / "scale_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(["--grid", "cpu", "--steps", "1", "--warmup", "1", "--threads", "1"])
    reports = module.run_grid(args)
    assert [r.get("gradient_checkpointing") for r in reports] == [False, True]
    table = module.grid_table(reports)
    assert table.count("| TiT-tiny/1 | 4 |") == 2 and "failed" not in table
    failed = module.grid_table([{"row": "--model TiT-XL/2", "error": "CUDA out of memory"}])
    assert "failed: CUDA out of memory" in failed


def test_cpu_grid_prints_the_planner_against_the_peak_rss(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "scale_throughput", REPO / "benchmarks" / "scale_throughput.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    small = {"hidden_size": 128, "depth": 2, "num_heads": 2, "batch": 4}
    monkeypatch.setattr(module, "RSS_ROWS", [("tiny", small)])
    table = module.rss_table()
    rows = [line for line in table.splitlines() if line.startswith("| tiny |")]
    assert [r.split("|")[4].strip() for r in rows] == ["returning", "default"]
    ratio = float(rows[0].split("|")[7])
    assert 0.85 < ratio < 1.15, table
