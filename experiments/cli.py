"""The `attnas` command line. Every user mistake (an `AttnasError`) ends in one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import sys

from search_space.errors import AttnasError


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except AttnasError as error:
        print(f"attnas: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnas",
        description="Neural architecture search for spatiotemporal attention cells in video models.",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    search = commands.add_parser("search", help="run a search described by an experiment YAML file")
    search.add_argument("config", help="experiment YAML file, e.g. experiments/configs/quickstart.yaml")
    search.set_defaults(run=_search)

    space = commands.add_parser("space", help="size and summary of a search space; sample a few cells")
    space.add_argument("space", help="search-space YAML file, or a shipped space name (default, small)")
    space.add_argument("--sample", type=_non_negative, default=3, metavar="N", help="cells to sample (default 3)")
    space.add_argument("--seed", type=int, default=0, help="seed for sampling (default 0)")
    space.set_defaults(run=_space)
    return parser


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def _search(args: argparse.Namespace) -> int:
    print("attnas: the search driver is not built yet (see the experiments issue); "
          "the install path works: try `attnas space default`.", file=sys.stderr)
    return 2


def _space(args: argparse.Namespace) -> int:
    import numpy as np

    from search_space import load_space

    space = load_space(args.space)
    size = space.count()
    print(f"search space {space.name!r}: up to {space.max_nodes} operations, widths {list(space.widths)}")
    print(f"ops: {', '.join(space.ops)}")
    print(f"ordered specs: {size.ordered_specs:,}")
    cells = f"{size.cells:,.0f}" if size.exact else f"about {size.cells:,.0f} (+/- {size.standard_error:,.0f})"
    print(f"distinct cells: {cells}  [{size.method}]")
    rng = np.random.default_rng(args.seed)
    for index in range(args.sample):
        cell = space.sample(rng)
        print(f"\n# sample {index + 1}: {cell.hash}\n{cell.to_yaml()}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
