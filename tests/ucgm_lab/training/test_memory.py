"""The memory planner against the bytes autograd actually keeps (saved-tensor hooks, CPU)."""

import pytest
import torch

from ucgm_lab.networks.tit import TiT, tit_from_name
from ucgm_lab.training.memory import (
    GIB,
    MemoryPlanError,
    TiTShape,
    block_bytes_per_image,
    choose_checkpointing,
    ensure_fits,
    largest_batch,
    plan_memory,
    usable_bytes,
)


def _tiny(checkpointing=False, depth=3):
    torch.manual_seed(0)
    return TiT(
        input_size=16,
        in_channels=4,
        patch_size=2,
        hidden_size=64,
        depth=depth,
        num_heads=4,
        num_classes=10,
        gradient_checkpointing=checkpointing,
    )


def _saved_bytes(model, batch, precision):
    """Bytes of the distinct storages autograd saves in a training forward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    x, t = torch.randn(batch, 4, 16, 16), torch.rand(batch)
    y = torch.randint(0, 10, (batch,))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision != "no"):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x, t, y)
    return sum(seen.values())


@pytest.mark.parametrize("precision", ["no", "bf16"])
@pytest.mark.parametrize("batch", [2, 8])
def test_activation_estimate_matches_saved_tensor_bytes_within_5_percent(precision, batch):
    model = _tiny()
    measured = _saved_bytes(model, batch, precision)
    plan = plan_memory(model, batch, precision, checkpointing=False)
    expected = plan.activations + plan.autocast_weights  # autocast's weight copies are saved too
    if precision != "no":
        assert plan.autocast_weights == 2 * sum(p.numel() for p in model.blocks.parameters())
    assert measured == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_checkpointed_forward_keeps_about_the_block_inputs(precision):
    """With checkpointing the forward keeps the block inputs (25 %: small per-block extras)."""
    model = _tiny(checkpointing=True).train()
    batch = 8
    measured = _saved_bytes(model, batch, precision)
    plan = plan_memory(model, batch, precision, checkpointing=True)
    assert plan.autocast_weights == 0 and plan.recompute == batch * plan.block_bytes_per_image
    assert measured == pytest.approx(plan.activations, rel=0.25)
    assert measured < 0.3 * _saved_bytes(_tiny(), batch, precision)


def test_tit_xl2_worked_example():
    """The issue's case: TiT-XL/2, 256 tokens, bf16, 128 images per GPU, 8 GPUs, two EMAs.

    Per token by hand: (4 x 4 + 12 x 2) x 1152 + 4 x 2 x 3072 + 2 x 4 + 3 x 4 x 16 = 70856
    bytes; x 256 tokens + (4 + 7 x 2) x 1152 per image = 18 159 872 bytes = 17.32 MiB.
    """
    with torch.device("meta"):
        model = tit_from_name("TiT-XL/2", input_size=32, in_channels=4, num_classes=1000)
    shape = TiTShape.of(model)
    assert (shape.tokens, shape.width, shape.hidden, shape.heads, shape.depth) == (
        256,
        1152,
        3072,
        16,
        28,
    )
    assert block_bytes_per_image(shape, "bf16") == 18_159_872
    off = plan_memory(shape, 128, "bf16", False, num_processes=8, ema_copies=2)
    on = plan_memory(shape, 128, "bf16", True, num_processes=8, ema_copies=2)
    h100 = 80 * 10**9
    assert off.activations == 28 * 128 * 18_159_872 + 128 * 256 * 8 * 1152
    # weights, DDP buckets, two Adam moments, two EMAs; gradients are a phase of their own
    assert off.state == 6 * 4 * shape.parameters and off.gradients == 4 * shape.parameters
    assert off.autocast_weights == 2 * shape.block_parameters and on.autocast_weights == 0
    # without checkpointing: the end of the forward pass, with the teacher's no-grad pass
    assert off.peak_phase == "forward"
    assert off.forward_transient == 128 * 256 * ((4 + 2) * 1152 + 4 * 2 * 3072)
    assert off.total == off.state + off.activations + off.autocast_weights + off.forward_transient
    # with it: the backward pass, when the gradients are complete and a block is recomputed
    assert on.peak_phase == "backward" and on.gradients > on.activations
    assert on.total == on.state + on.gradients + on.recompute + on.backward_transient
    assert off.total > usable_bytes(h100) > on.total
    assert 75 < off.total / GIB < 80 and 18 < on.total / GIB < 22
    assert largest_batch(shape, h100, False, precision="bf16", num_processes=8) == 109


def test_ensure_fits_turns_on_checkpointing_or_names_the_largest_batch():
    model = _tiny(depth=4)
    plan_off = plan_memory(model, 64, "bf16", False)
    plan_on = plan_memory(model, 64, "bf16", True)
    # a device between the two estimates (after the 95 % - 1.5 GiB rule)
    device = int((plan_on.total + plan_off.total) / 2 / 0.95 + 1.5 * GIB / 0.95)
    messages = []
    chosen = ensure_fits(model, 64, precision="bf16", device_bytes=device, log=messages.append)
    assert model.gradient_checkpointing and chosen.checkpointing
    assert "Gradient checkpointing is now on" in messages[0]
    assert (
        f"largest batch per GPU that fits is {largest_batch(model, device, False, precision='bf16')}"
        in messages[0]
    )

    small = int(plan_on.state / 0.95 + 1.5 * GIB / 0.95)  # not even one image beyond the state
    with pytest.raises(
        MemoryPlanError, match=r"largest batch per GPU that fits is 0 without and 0 with"
    ):
        ensure_fits(_tiny(depth=4), 64, precision="bf16", device_bytes=small, log=messages.append)
    with pytest.warns(ResourceWarning, match="exceeds"):
        kept = ensure_fits(
            _tiny(depth=4), 64, precision="bf16", device_bytes=small, action="warn", log=print
        )
    assert not kept.checkpointing


def test_bad_planner_inputs():
    with pytest.raises(ValueError, match="precision must be"):
        plan_memory(_tiny(), 2, "fp8")
    with pytest.raises(ValueError, match="batch_per_gpu must be a positive integer"):
        plan_memory(_tiny(), 0)
    with pytest.raises(TypeError, match="needs a TiT-like model"):
        plan_memory(torch.nn.Linear(2, 2), 2)


def test_the_trainer_plans_per_gpu_micro_batches_and_counts_the_teacher(monkeypatch):
    """Trainer's check (CUDA only, so called directly with a stand-in accelerator)."""
    from types import SimpleNamespace

    from ucgm_lab.objective import UCGMObjective
    from ucgm_lab.training import TrainerConfig
    from ucgm_lab.training import trainer as trainer_module

    model = _tiny(depth=4)
    # 64 images, 2 processes, 2 micro-batches: 16 per GPU, gradients held through the
    # micro-batches; the EMA teacher is a second copy; fused AdamW (CUDA)
    common = dict(num_processes=2, ema_copies=2, accumulating=True, optimizer_kernel="fused")
    off = plan_memory(model, 16, "bf16", False, **common)
    on = plan_memory(model, 16, "bf16", True, **common)
    assert off.forward == off.activations + off.autocast_weights + off.forward_transient + (
        off.gradients
    )
    device = int((on.total + off.total) / 2 / 0.95 + 1.5 * GIB / 0.95)
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=device)
    )
    messages = []
    acc = SimpleNamespace(
        num_processes=2, mixed_precision="bf16", device=torch.device("cuda"), print=messages.append
    )
    objective = UCGMObjective("linear", 0.0, enhancement_ratio=0.5)
    cfg = TrainerConfig(gradient_accumulation_steps=2)
    plan = trainer_module._check_memory(model, objective, SimpleNamespace(batch_size=64), acc, cfg)
    assert plan.batch_per_gpu == 16 and plan.checkpointing and model.gradient_checkpointing
    every, chosen = choose_checkpointing(model, 16, device, precision="bf16", **common)
    assert every and model.gradient_checkpointing == (True if every == 1 else every)
    assert plan.total == chosen.total <= on.total + (off.total - on.total)
    assert "Gradient checkpointing is now on" in messages[0]
    # a model the planner does not know is left alone
    assert trainer_module._check_memory(torch.nn.Linear(2, 2), objective, None, acc, cfg) is None


def test_phases_and_optimizer_kernels():
    """The step phase holds the gradients and the kernel's temporaries; no teacher pass: none."""
    model = _tiny()
    shape = TiTShape.of(model)
    fused = plan_memory(model, 2, "no", optimizer_kernel="fused")
    foreach = plan_memory(model, 2, "no", optimizer_kernel="foreach")
    loop = plan_memory(model, 2, "no", optimizer_kernel="loop")
    assert fused.step == fused.gradients == 4 * shape.parameters
    assert foreach.step == 2 * foreach.gradients
    assert loop.optimizer_step == 8 * shape.largest_parameter > 0
    bare = plan_memory(model, 2, "no", no_grad_pass=False)
    assert bare.forward_transient == 0 and bare.forward == bare.activations
    assert bare.backward == max(bare.activations, bare.gradients) + bare.backward_transient
    with pytest.raises(ValueError, match="optimizer_kernel must be"):
        plan_memory(model, 2, "no", optimizer_kernel="adam")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(checkpointing=False),
        dict(checkpointing=True),
        dict(checkpointing=False, accumulating=True),
        dict(checkpointing=True, accumulating=True),
        dict(checkpointing=True, optimizer_kernel="foreach"),
    ],
)
def test_summary_parts_add_up_to_the_peak(kwargs):
    for batch in (1, 64):
        plan = plan_memory(_tiny(), batch, "bf16", **kwargs)
        parts = plan.phase_parts()
        assert sum(size for _, size in parts) == plan.total - plan.state
        assert plan.summary().startswith(f"{batch} images/GPU, bf16")
        assert f"{plan.peak_phase} peak" in plan.summary()


def test_choose_checkpointing_takes_the_least_recomputation_that_fits():
    """Partial checkpointing (every k-th block): the largest period k whose plan fits."""
    model = _tiny(depth=4)
    plans = {k: plan_memory(model, 64, "bf16", k) for k in (0, 4, 3, 2, 1)}
    # every 3rd and every 2nd block recompute blocks {0, 3} and {0, 2}: equal activations
    assert plans[0].total > plans[4].total > plans[2].total > plans[1].total
    assert plans[3].total == plans[2].total
    # k = 3 and k = 2 recompute as many blocks: the larger period is taken
    for k, expect in ((4, 4), (2, 3), (1, 1)):
        # a device whose usable memory lies just above plan k's total
        device = int((plans[k].total + 1) / 0.95 + 1.5 * GIB / 0.95) + 64
        every, plan = choose_checkpointing(model, 64, device, precision="bf16")
        assert every == expect and plan.total == plans[k].total, (k, every)
        assert plan.total <= usable_bytes(device)
    big = int(plans[0].total / 0.95 + 1.5 * GIB / 0.95) + 64
    assert choose_checkpointing(model, 64, big, precision="bf16")[0] == 0
    tiny_device = int(plans[1].state / 0.95 + 1.5 * GIB / 0.95)
    assert choose_checkpointing(model, 64, tiny_device, precision="bf16")[0] is None
    # the trainer's check picks it and sets the model's period
    device = int((plans[2].total + plans[4].total) / 2 / 0.95 + 1.5 * GIB / 0.95)
    ensure_fits(model, 64, precision="bf16", device_bytes=device, log=lambda m: None)
    assert model.gradient_checkpointing == 3


@pytest.mark.parametrize(
    ("lam", "zeta"), [(0.0, 0.0), (0.0, 0.5), (1.0, 0.0), (0.5, 0.0), (1.0, 0.5)]
)
def test_the_memory_check_counts_what_the_few_step_monitor_keeps(lam, zeta, monkeypatch):
    """The Trainer's plan holds the FewStepMonitor's references (made when fit starts at lambda > 0).

    The monitor keeps the EMA's starting parameters and, without a frozen teacher (lambda > 0,
    no enhanced target), a deep copy of the starting model: its parameters and buffers. The
    expected bytes are read from a monitor built as ``Trainer.fit`` builds it.
    """
    from types import SimpleNamespace

    from ucgm_lab.ema import ExponentialMovingAverage
    from ucgm_lab.objective import UCGMObjective
    from ucgm_lab.training import TrainerConfig
    from ucgm_lab.training import trainer as trainer_module
    from ucgm_lab.training.diagnostics import FewStepMonitor, wants_few_step_monitor

    def nbytes(tensors):
        return sum(t.numel() * t.element_size() for t in tensors)

    model = _tiny()
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=2**50)
    )
    acc = SimpleNamespace(
        num_processes=1, mixed_precision="no", device=torch.device("cuda"), print=lambda m: None
    )
    objective = UCGMObjective("linear", lam, enhancement_ratio=zeta)
    plan = trainer_module._check_memory(
        model, objective, SimpleNamespace(batch_size=4), acc, TrainerConfig()
    )
    teacher = objective.uses_ema_teacher or objective.uses_frozen_teacher
    without = plan_memory(
        model, 4, "no", ema_copies=1 + int(teacher), no_grad_pass=lam > 0 or zeta > 0
    )
    kept = 0
    if wants_few_step_monitor(objective):
        ema = ExponentialMovingAverage(model, 0.999)
        monitor = FewStepMonitor(model, ema.model, objective=objective)
        kept = nbytes(monitor.start_ema)
        if monitor.start_model is not None:
            copy = monitor.start_model
            kept += nbytes(copy.parameters()) + nbytes(copy.buffers())
    assert (lam > 0 and zeta == 0) == (kept > nbytes(model.parameters()))  # the copy's case
    assert plan.monitor == plan.state - without.state == kept
    assert plan.total - without.total == kept
    assert plan.components()["monitor"] == kept


def test_the_starting_model_copy_is_counted_only_without_a_frozen_teacher(monkeypatch):
    """lambda > 0: the monitor's part of the plan without the enhanced target exceeds the one
    with it by the model's parameter and buffer bytes (its copy of the starting model); with the
    enhanced target the frozen teacher is counted instead, as one more EMA copy."""
    from types import SimpleNamespace

    from ucgm_lab.objective import UCGMObjective
    from ucgm_lab.training import TrainerConfig
    from ucgm_lab.training import trainer as trainer_module

    model = _tiny()
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda d: SimpleNamespace(total_memory=2**50)
    )
    acc = SimpleNamespace(
        num_processes=1, mixed_precision="no", device=torch.device("cuda"), print=lambda m: None
    )

    def planned(zeta):
        objective = UCGMObjective("linear", 1.0, enhancement_ratio=zeta)
        data = SimpleNamespace(batch_size=4)
        return trainer_module._check_memory(model, objective, data, acc, TrainerConfig())

    plain, enhanced = planned(0.0), planned(0.5)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert buffers > 0  # the TiT's RoPE tables and position embedding
    # the frozen teacher is one more EMA-sized copy of the parameters (counted before the fix)
    assert enhanced.state - plain.state == params - (params + buffers)
    assert plain.monitor - enhanced.monitor == params + buffers
