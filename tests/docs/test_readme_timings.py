"""Issue 18: every duration the README states (outside its captures) is one benchmarks/RESULTS.md measured, in a
section of RESULTS.md that the same paragraph cites by its title ("Trial speed", ...)."""
import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DURATION = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(?:minutes?|min|seconds?|s|hours?|ms)\b")


def stated_durations(text: str) -> list[tuple[str, list[str]]]:
    """(number, titles the paragraph cites in double quotes) of every duration in `text`'s prose (code blocks,
    such as captures of a terminal, left out)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return [(match.group(1), re.findall(r'"([^"]+)"', paragraph))
            for paragraph in prose.split("\n\n") for match in DURATION.finditer(paragraph)]


def sections(markdown: str) -> list[tuple[str, str]]:
    """(title, text up to the next heading of the same or a higher level) of every heading."""
    headings = [(m.start(), len(m.group(1)), m.group(2)) for m in re.finditer(r"^(#+) (.*)$", markdown, re.M)]
    found = []
    for index, (start, level, title) in enumerate(headings):
        end = next((s for s, lvl, _ in headings[index + 1:] if lvl <= level), len(markdown))
        found.append((title, markdown[start:end]))
    return found


def uncited(readme: str, results: str) -> list[str]:
    """The durations of `readme` that no section of `results` cited beside them holds."""
    numbers = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w]|\.\d)")
    missing = []
    for number, cited in stated_durations(readme):
        texts = [text for title, text in sections(results) if any(title.startswith(c) for c in cited)]
        if not any(number in numbers.findall(text) for text in texts):
            missing.append(f"{number} (cites {cited or 'nothing'})")
    return missing


def test_the_readme_states_only_measured_durations_and_cites_where():
    readme = (REPOSITORY / "README.md").read_text()
    results = (REPOSITORY / "benchmarks" / "RESULTS.md").read_text()
    assert "2.14" in [number for number, _ in stated_durations(readme)]      # the quick-start search, end to end
    assert uncited(readme, results) == []


def test_the_check_finds_durations_and_refuses_uncited_or_unmeasured_ones():
    results = "## Trial speed: a\n\n| after | 2.14 |\n\n## Other\n\nabout 60 minutes\n"
    readme = ('It took 2.14 minutes ("Trial speed").\n\nThen 3 s and 60 minutes ("Trial speed").\n\n'
              "```\nleft ~20s elapsed 35 s\n```\n\n16x112x112 clips, 4 epochs, 2.14 min\n")
    assert [number for number, _ in stated_durations(readme)] == ["2.14", "3", "60", "2.14"]
    assert uncited(readme, results) == ["3 (cites ['Trial speed'])", "60 (cites ['Trial speed'])",
                                        "2.14 (cites nothing)"]
