"""Every error attnas raises for something a user handed in, in one place. All derive from `AttnasError` (a
`ValueError`); the message is one line naming the file, field and expectation, and the CLI exits 2 on them."""
from attnas.cells.errors import CellBuildError, CellInputError
from attnas.controllers.base import SpaceExhausted
from attnas.evaluators.custom import EvaluatorImportError
from attnas.experiments.launch import RunExistsError
from attnas.experiments.run_folder import RunNotFoundError
from attnas.experiments.schema import ConfigError
from attnas.search_space.errors import AttnasError, SpecError

__all__ = ["AttnasError", "SpecError", "ConfigError", "CellBuildError", "CellInputError", "RunNotFoundError",
           "RunExistsError", "EvaluatorImportError", "SpaceExhausted"]
