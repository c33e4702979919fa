"""Summarise py-spy collapsed stacks: where the server's samples go, by function.

    .venv/bin/python -m tests.bench.profile_top bench-results/<run>/profile-create.txt [--top 40]

Prints the functions with the most inclusive samples (the frame is anywhere on the stack) and
the most self samples (the frame is the leaf), as a share of all samples. Idle samples (the
event loop waiting in epoll) are counted apart so the shares describe busy time.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

IDLE_LEAVES = ("select (selectors.py", "epoll", "_run_once (asyncio/base_events.py")


def frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)"; keeps names readable.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    p.add_argument("stacks", type=Path)
    p.add_argument("--top", type=int, default=40)
    a = p.parse_args()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in a.stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")]
        if any(marker in stack.rsplit(";", 1)[-1] for marker in IDLE_LEAVES):
            idle += count
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    print(f"busy samples {total}, idle samples {idle}")
    for title, counter in (("inclusive", inclusive), ("self", own)):
        print(f"\n-- {title} --")
        for name, count in counter.most_common(a.top):
            print(f"{100 * count / max(total, 1):6.1f}%  {name}")


if __name__ == "__main__":
    main()
