"""The videos a search's data skipped (missing, unreadable, undecodable), gathered from its trials' records: listed
in the run folder (skipped_videos.tsv: split, video, reason), counted in the history's metadata, summarised in the
console after `attnas search` and `attnas resume`."""
from __future__ import annotations

from collections import Counter

SKIPPED_FILE = "skipped_videos.tsv"


def report_skipped_videos(run) -> list[str]:
    """Write the run's skipped videos to its folder and history; return the console lines ([] if none)."""
    history = run.history()
    rows: dict[str, None] = {}
    for record in history.trials():
        for row in record.attrs.get("skipped_videos") or ():
            rows.setdefault(str(row), None)
    if not rows:
        return []
    path = run.path / SKIPPED_FILE
    path.write_text("split\tvideo\treason\n" + "".join(f"{row}\n" for row in rows))
    history.set_metadata(skipped_videos=len(rows), skipped_videos_file=SKIPPED_FILE)
    reasons = Counter(row.split("\t")[2].split(":")[0] for row in rows)
    kinds = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    first = [row.split("\t") for row in list(rows)[:3]]
    return [f"skipped {len(rows)} videos ({kinds}); every one with its reason in {path}",
            *(f"  {split}: {video} ({reason})" for split, video, reason in first)]
