"""attnas: neural architecture search for spatiotemporal attention cells in video models.

The parts are installed under this namespace: `attnas.search_space`, `attnas.cells`, `attnas.controllers`,
`attnas.evaluators`, `attnas.experiments`.
"""
__version__ = "0.1.0"
