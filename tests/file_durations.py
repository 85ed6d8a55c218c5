"""Seconds each test file took in a full run, for handing out the longest files first (conftest.py).

    python tests/file_durations.py JUNIT.xml     # after `bash packaging/bootstrap.sh test --junitxml=JUNIT.xml`

writes tests/file_durations.json (files of 5 s or more; the rest count by their markers). The
figures only rank files: a run on a busy machine ranks them as well as a quiet one.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

OUT = Path(__file__).with_suffix(".json")


def per_file(junit: Path) -> dict[str, float]:
    seconds: Counter[str] = Counter()
    for case in ET.parse(junit).iter("testcase"):
        module = [p for p in case.get("classname", "").split(".") if not p[:1].isupper()]  # drop a test class
        seconds["/".join(module) + ".py"] += float(case.get("time", 0))
    return {f: round(s) for f, s in sorted(seconds.items(), key=lambda kv: -kv[1]) if s >= 5}


if __name__ == "__main__":
    OUT.write_text(json.dumps(per_file(Path(sys.argv[1])), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
