import copy

import pytest
import torch
from torch import nn

from ucgm_lab.ema import ExponentialMovingAverage


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.b = nn.Linear(4, 2)


def _perturb(net, scale=1.0):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
        net.norm.running_mean.add_(1.0)
        net.norm.num_batches_tracked.add_(1)


def test_multi_tensor_update_equals_per_parameter_lerp():
    torch.manual_seed(0)
    net = Net()
    ema = ExponentialMovingAverage(net, 0.9)
    ref = copy.deepcopy(net)
    for _ in range(4):
        _perturb(net)
        ema.update(net)
        with torch.no_grad():
            for r, p in zip(ref.parameters(), net.parameters(), strict=True):
                r.lerp_(p, 0.1)
    for r, e in zip(ref.parameters(), ema.model.parameters(), strict=True):
        assert torch.equal(r, e)
    assert torch.equal(ema.model.norm.running_mean, net.norm.running_mean)
    assert int(ema.model.norm.num_batches_tracked) == 4
    assert ema.num_updates == 4


def test_update_follows_replaced_parameters_and_casts_dtypes():
    torch.manual_seed(0)
    net = Net()
    ema = ExponentialMovingAverage(net, 0.5)
    ema.update(net)
    net.b = nn.Linear(4, 2)  # new parameter objects: the pairing must be rebuilt
    ema.update(net)
    with torch.no_grad():
        net.b.weight.fill_(2.0)
    before = ema.model.b.weight.clone()
    ema.update(net)
    assert torch.equal(ema.model.b.weight, before.lerp(torch.full_like(before, 2.0), 0.5))
    ema.model.double()  # EMA kept in float64, model in float32: the update casts
    before = ema.model.b.weight.clone()
    ema.update(net)
    assert ema.model.b.weight.dtype == torch.float64
    assert torch.equal(ema.model.b.weight, before.lerp(net.b.weight.double(), 0.5))


def test_missing_parameter_is_a_clear_error():
    net = Net()
    ema = ExponentialMovingAverage(net, 0.9)
    net.extra = nn.Linear(1, 1)
    with pytest.raises(KeyError, match="parameter 'extra.weight' of the model is missing"):
        ema.update(net)


def test_unwrap_model_lives_in_model_api_and_the_old_path_warns():
    from torch import nn

    from ucgm_lab import ema
    from ucgm_lab.model_api import unwrap_model

    inner = nn.Linear(2, 2)
    wrapper = nn.DataParallel(inner)
    assert unwrap_model(wrapper) is inner
    with pytest.deprecated_call(match="model_api.unwrap_model"):
        old = ema.unwrap_model
    assert old is unwrap_model


def test_unwrap_model_keeps_time_scaled_around_a_network_with_a_module_attribute():
    # issue 24: TimeScaled forwards attributes, so a DataParallel inside it exposed `.module`
    # and unwrap_model stripped the time factor off the EMA, the teachers and the time check.
    from torch import nn

    from ucgm_lab.model_api import unwrap_model
    from ucgm_lab.networks import MLP2D, TimeScaled
    from ucgm_lab.objective import UCGMObjective
    from ucgm_lab.time_sensitivity import time_sensitivity

    torch.manual_seed(0)
    net = TimeScaled(nn.DataParallel(MLP2D(hidden=32, depth=2)), 0.03)
    assert unwrap_model(net) is net
    assert unwrap_model(nn.DataParallel(net)) is net
    x, t = torch.randn(64, 2), torch.rand(64)
    with torch.no_grad():
        assert torch.equal(ExponentialMovingAverage(net, 0.9).model(x, t), net(x, t))
    objective = UCGMObjective("linear", 1.0, enhancement_ratio=0.5, check_time_sensitivity=False)
    objective._ensure_teachers(net)
    assert isinstance(objective.frozen_teacher, TimeScaled)
    plain = TimeScaled(net.network.module, 0.03)
    assert time_sensitivity(net, x).relative_change == time_sensitivity(plain, x).relative_change


def test_ramp_follows_min_decay_and_one_plus_k_over_ten_plus_k_and_survives_a_resume():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    ema = ExponentialMovingAverage(net, 0.9, ramp=True)
    expected = net.weight.detach().double().clone()
    decays = []
    for k in range(40):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        d = min(0.9, (1 + k) / (10 + k))  # independent: the rule written out
        decays.append(ema.current_decay)
        expected = d * expected + (1 - d) * net.weight.detach().double()
        ema.update(net)
        if k == 20:  # a resume mid-ramp continues the same sequence
            state = ema.state_dict()
            ema = ExponentialMovingAverage(torch.nn.Linear(3, 2), 0.9, ramp=True)
            ema.load_state_dict(state)
    assert decays == [min(0.9, (1 + k) / (10 + k)) for k in range(40)]
    torch.testing.assert_close(ema.model.weight.double(), expected, rtol=1e-5, atol=1e-6)
    ema.restart()
    assert ema.num_updates == 0 and ema.current_decay == 0.1


def test_ramp_and_warmup_exclude_each_other_and_old_states_load_without_ramp():
    net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="not both"):
        ExponentialMovingAverage(net, 0.9, warmup=True, ramp=True)
    state = ExponentialMovingAverage(net, 0.9).state_dict()
    del state["ramp"]  # written before the ramp existed
    ema = ExponentialMovingAverage(net, 0.9, ramp=True)
    ema.load_state_dict(state)
    assert not ema.ramp and ema.current_decay == 0.9
