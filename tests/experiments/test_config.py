"""Experiment files: the shipped ones parse, and every kind of mistake gets one line naming file and field."""
from pathlib import Path

import pytest
import yaml

from attnas.experiments.config import load_experiment, parse_duration
from attnas.search_space.errors import AttnasError

CONFIGS = sorted(Path("experiments/configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_experiments_parse(path):
    config = load_experiment(str(path))
    assert config.name and config.budget.trials >= 1


def write(tmp_path, data) -> str:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


BASE = {"name": "t", "space": "small", "controller": {"name": "random"}, "evaluator": {"epochs": 1}}

MISTAKES = {
    "unknown top-level key": (dict(BASE, budgte={"trials": 3}),
                              r"budgte: unknown field \(did you mean 'budget'\?\); expected one of: name, space"),
    "unknown nested key": (dict(BASE, budget={"trails": 3}),
                           r"budget.trails: unknown field \(did you mean 'trials'\?\)"),
    "wrong type": (dict(BASE, concurrency="two"), r"concurrency: expected a whole number, got str 'two'"),
    "non-positive": (dict(BASE, concurrency=0), r"concurrency: expected a positive number, got 0"),
    "bad duration": (dict(BASE, budget={"time": "ten minutes"}),
                     r"budget.time: expected a positive duration such as 600, '90s', '10m', '2h'"),
    "bad scheduler": (dict(BASE, early_stopping={"scheduler": "hyperband"}),
                      r"early_stopping.scheduler: expected one of 'none', 'asha', got str 'hyperband'"),
    "missing name": ({k: v for k, v in BASE.items() if k != "name"}, r"name: missing; expected a string"),
    "unknown controller": (dict(BASE, controller={"name": "evolutoin"}),
                           r"controller: controller 'evolutoin' is unknown \(did you mean 'evolution'\?\)"),
    "unknown controller setting": (dict(BASE, controller={"name": "evolution", "population": 5}),
                                   r"\.yaml: controller.population: unknown field \(did you mean "
                                   r"'population_size'\?\)"),
    "unknown evaluator field": (dict(BASE, evaluator={"epoch": 2}),
                                r"evaluator.epoch: unknown field \(did you mean 'epochs'\?\)"),
    "evaluator type": (dict(BASE, evaluator={"epochs": "3"}), r"evaluator.epochs: expected a whole number"),
    "evaluator nested": (dict(BASE, evaluator={"data": {"train_sise": 5}}),
                         r"evaluator.data.train_sise: unknown field \(did you mean 'train_size'\?\)"),
    "evaluator cross-field": (dict(BASE, evaluator={"lr": -1.0}), r"evaluator: lr must be > 0, got -1.0"),
    "warm start": (dict(BASE, evaluator={"pretrain_epochs": -1}), r"evaluator: pretrain_epochs must be >= 0, got -1"),
    "frozen front": (dict(BASE, evaluator={"freeze_front": "yes"}),
                     r"evaluator.freeze_front: expected true or false, got str 'yes'"),
    "missing space file": (dict(BASE, space="nowhere.yaml"), r"space: .*nowhere.yaml: no such file"),
    "objective": (dict(BASE, objective={"metrc": "accuracy"}), r"objective"),
    "bad run name": (dict(BASE, name="a b/c"), r"name: expected a run name of 1 to 100 letters, digits"),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_get_one_line_naming_file_and_field(tmp_path, case):
    data, pattern = MISTAKES[case]
    path = write(tmp_path, data)
    with pytest.raises(AttnasError) as error:
        load_experiment(path)
    message = str(error.value)
    assert message.startswith(path + ": "), message
    assert "\n" not in message
    import re
    assert re.search(pattern, message), message


def test_space_path_is_relative_to_the_experiment_file(tmp_path):
    (tmp_path / "spaces").mkdir()
    (tmp_path / "spaces" / "mine.yaml").write_text(Path("experiments/configs/spaces/small.yaml").read_text())
    config = load_experiment(write(tmp_path, dict(BASE, space="spaces/mine.yaml")))
    assert Path(config.space_path) == tmp_path / "spaces" / "mine.yaml"


def test_not_yaml(tmp_path):
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(AttnasError, match="not valid YAML"):
        load_experiment(path)


@pytest.mark.parametrize("text, seconds", [(600, 600.0), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0),
                                           ("1.5 h", 5400.0), (None, None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "-5m", "10 parsecs", True, 0])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_numbers_yaml_reads_as_strings_are_numbers(tmp_path):
    config = load_experiment(write(tmp_path, "name: t\nspace: small\nevaluator: {lr: 1e-3, epochs: 1}\n"))
    from attnas.experiments.config import proxy_config

    assert proxy_config(config.evaluator, where="x").lr == 0.001


def test_one_parser_reads_the_evaluator_section_wherever_it_is_read(tmp_path):
    """The experiment file and `ProxyConfig.from_dict` (trials, benchmarks) read the same text the same way: YAML
    1.1's string "1e-3" is a number for both, an unknown key gets a did-you-mean from both."""
    from attnas.evaluators.config import ProxyConfig
    from attnas.experiments.config import proxy_config

    path = tmp_path / "exp.yaml"
    path.write_text("name: lr\nspace: small\nevaluator: {lr: 1e-3, weight_decay: 5e-5}\n")
    config = load_experiment(str(path))
    assert proxy_config(config.evaluator, where="x").lr == 1e-3
    assert ProxyConfig.from_dict({"lr": "1e-3", "weight_decay": "5e-5"}).lr == 1e-3
    with pytest.raises(AttnasError, match=r"evaluator.data.sampling.fram: unknown field \(did you mean 'frames'\?\)"):
        ProxyConfig.from_dict({"data": {"sampling": {"fram": 8}}}, where="exp.yaml", path="evaluator")


def test_the_experiments_package_has_no_import_cycle():
    """Every import in experiments/ (inside functions too): the config no longer reaches the driver through the
    differentiable search (config -> differentiable -> driver -> config), nor the driver the differentiable search
    and back."""
    import ast

    import networkx as nx

    root = Path(__file__).resolve().parents[2] / "experiments"
    graph = nx.DiGraph()
    for path in root.rglob("*.py"):
        module = "attnas.experiments." + ".".join(path.relative_to(root).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("attnas.experiments"):
                graph.add_edge(module, node.module)
    assert list(nx.simple_cycles(graph)) == []
