# pyright: reportMissingImports=false, reportUnknownMemberType=false, reportUnknownVariableType=false, reportUnknownArgumentType=false
# (matplotlib and numpy come with the optional `bench` extra, which `make test` does not install)
"""PNG plots of a run: per scenario a latency histogram and throughput over time, plus the
ratios to the baselines. Needs matplotlib (the `bench` extra); without it, none are drawn."""

from __future__ import annotations

from pathlib import Path

from tests.bench.loadgen import SLOT_S, Stats


def write(stats: dict[str, Stats], out: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        print("plots skipped: matplotlib is not installed (pip install '.[bench]')")
        return []
    written: list[Path] = []
    for name, s in stats.items():
        if not s.latencies_ms:
            continue
        fig, (hist, tput) = plt.subplots(1, 2, figsize=(11, 3.8))
        lat = np.asarray(s.latencies_ms)
        lo, hi = max(lat.min(), 0.01), max(lat.max(), 0.02)
        hist.hist(lat, bins=np.geomspace(lo, hi * 1.01, 80), color="#3b6ea5")
        hist.set_xscale("log")
        hist.set_xlabel("latency (ms, log scale)")
        hist.set_ylabel("requests")
        for q, style in (("p50", "-"), ("p99", "--"), ("p99.9", ":")):
            hist.axvline(s.latency_ms[q], color="#c0392b", linestyle=style,
                         label=f"{q} {s.latency_ms[q]:.2f} ms")
        hist.legend(fontsize=8)
        hist.set_title(f"{name}: latency")
        t = np.arange(len(s.timeline)) * SLOT_S
        tput.plot(t, np.asarray(s.timeline) / SLOT_S, color="#27ae60")
        tput.axhline(s.rps, color="#555", linestyle="--", label=f"mean {s.rps:.0f}/s")
        tput.set_xlabel("seconds after warmup")
        tput.set_ylabel("requests/s")
        tput.set_ylim(bottom=0)
        tput.legend(fontsize=8)
        tput.set_title(f"{name}: throughput ({s.concurrency} in flight)")
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
