"""The differentiable search on a tiny proxy task: deterministic for a seed, architecture steps only after the
warm-up, derived cells in the space, and its settings checked."""
import pytest

from attnas.evaluators.config import DataConfig, ProxyConfig
from attnas.evaluators.differentiable import DifferentiableConfig, DifferentiableSearch
from attnas.search_space import AttnasError, load_space

TINY = ProxyConfig(data=DataConfig(train_size=48, validation_size=32, test_size=16), epochs=1, batch_size=16,
                   eval_batch_size=32, backbone_args={"stem_width": 8, "widths": (8, 16, 16)}, threads=1,
                   measure_latency=False)


def run(settings: DifferentiableConfig, proxy: ProxyConfig = TINY):
    return list(DifferentiableSearch(proxy, settings, load_space("small")).epochs())


@pytest.mark.slow
def test_search_is_deterministic_for_a_seed_and_moves_the_architecture():
    first = run(DifferentiableConfig(epochs=2, arch_lr=0.05))
    second = run(DifferentiableConfig(epochs=2, arch_lr=0.05))
    assert [e.to_dict() for e in first] == [
        {**e.to_dict(), "metrics": {**e.metrics, "seconds": f.metrics["seconds"]}} for e, f in zip(second, first)]
    space = load_space("small")
    for epoch in first:
        space.check(epoch.cell)
        assert len(epoch.weights) == 1  # one placement, one supernet cell
    uniform = 1.0 / len(first[0].weights[0]["candidates"])
    moved = max(abs(p - uniform) for slot in first[-1].weights[0]["slots"] for p in slot["ops"])
    assert moved > 1e-3
    other_seed = run(DifferentiableConfig(epochs=1, arch_lr=0.05), ProxyConfig(**{**TINY.__dict__, "seed": 1}))
    assert other_seed[0].weights != first[0].weights


def test_warmup_epochs_leave_the_architecture_uniform():
    (epoch,) = run(DifferentiableConfig(epochs=1, warmup_epochs=1))
    record = epoch.weights[0]
    uniform = 1.0 / len(record["candidates"])
    assert all(p == pytest.approx(uniform, abs=1e-6) for slot in record["slots"] for p in slot["ops"])
    assert record["depth"] == pytest.approx([0.5, 0.5], abs=1e-6)
    assert 0.0 <= epoch.metrics["derived_top1"] <= 1.0 and epoch.metrics["train_loss"] > 0


def test_settings_are_checked():
    with pytest.raises(AttnasError, match="arch_lr must be > 0"):
        DifferentiableConfig(arch_lr=0)
    with pytest.raises(AttnasError, match="arch_betas"):
        DifferentiableConfig(arch_betas=(0.5, 1.5))
    assert DifferentiableSearch(TINY, DifferentiableConfig(), load_space("small")).epoch_count == TINY.epochs


def test_gumbel_sampling_trains_one_cell_per_step_and_is_deterministic():
    first = run(DifferentiableConfig(epochs=1, sampling="gumbel", arch_lr=0.05))
    second = run(DifferentiableConfig(epochs=1, sampling="gumbel", arch_lr=0.05))
    assert first[0].weights == second[0].weights and first[0].cell == second[0].cell
    uniform = 1.0 / len(first[0].weights[0]["candidates"])
    assert max(abs(p - uniform) for slot in first[0].weights[0]["slots"] for p in slot["ops"]) > 1e-3
    search = DifferentiableSearch(TINY, DifferentiableConfig(epochs=3, tau_start=4.0, tau_end=1.0),
                                  load_space("small"))
    assert [search.temperature(e) for e in range(3)] == [4.0, 2.5, 1.0]
