# SPDX-License-Identifier: MIT
"""pel_trace.plots - pel-trace --plots: PNGs with matplotlib's Agg backend.

    worker-N-hist.png   queue-wait and service-time histograms of worker N (log-spaced bins)
    worker-N-cdf.png    their CDFs
    timeline.png        busy/idle over time, one row per worker
"""
import os


def _mpl():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    return plt, np


def _bins(np, a):
    """Histogram bins for a (usec): log-spaced when a spans more than 20x; values <= 0 go into
    the first bin. Returns (values to histogram, bins, log?)."""
    pos = a[a > 0]
    lo = float(pos.min()) if len(pos) else 0.001
    hi = float(a.max())
    if hi <= lo * 20:
        lo = float(a.min())
        return a, np.linspace(lo, hi if hi > lo else lo + 0.001, 60), False
    bins = np.logspace(np.log10(lo), np.log10(hi), 60)
    bins[0], bins[-1] = lo, hi        # exact ends: logspace rounds them
    return np.maximum(a, lo), bins, True


def write(res, outdir):
    """Write the PNGs into outdir (made if missing); return their paths."""
    plt, np = _mpl()
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for w in res["workers"]:
        wid = w["worker"]
        series = [("queue wait", np.frombuffer(w["_qwait_values"], dtype=np.int64) / 1000.0),
                  ("service time", np.frombuffer(w["_service_values"], dtype=np.int64) / 1000.0)]

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, (label, a) in zip(axes, series):
            ax.set_title(f"worker {wid}: {label} ({len(a):,} tasks)")
            ax.set_xlabel("usec")
            ax.set_ylabel("tasks")
            if len(a):
                vals, bins, log = _bins(np, a)
                ax.hist(vals, bins=bins, color="tab:blue" if label == "queue wait" else "tab:orange")
                if log:
                    ax.set_xscale("log")
                ax.set_yscale("log")
            else:
                ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        p = os.path.join(outdir, f"worker-{wid}-hist.png")
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)

        fig, ax = plt.subplots(figsize=(7, 4.5))
        any_data = False
        for label, a in series:
            if not len(a):
                continue
            any_data = True
            s = np.sort(a)
            n = len(s)
            if n > 4000:           # plot 4000 quantiles, not millions of points
                idx = np.unique(np.linspace(0, n - 1, 4000).astype(np.int64))
                x, y = s[idx], (idx + 1) / n
            else:
                x, y = s, np.arange(1, n + 1) / n
            ax.step(x, y, where="post", label=f"{label} (p99 {s[max((99 * n + 99) // 100, 1) - 1]:.3f} usec)")
        ax.set_title(f"worker {wid}: latency CDF")
        ax.set_xlabel("usec")
        ax.set_ylabel("fraction of tasks <= x")
        ax.set_ylim(0, 1.005)
        if any_data:
            if min(float(np.min(a)) for _, a in series if len(a)) > 0:
                ax.set_xscale("log")
            ax.legend(loc="lower right")
        else:
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        p = os.path.join(outdir, f"worker-{wid}-cdf.png")
        fig.savefig(p, dpi=90)
        plt.close(fig)
        paths.append(p)

    paths.append(_timeline(res, outdir, plt, np))
    return paths


def _timeline(res, outdir, plt, np):
    ws = [w for w in res["workers"] if w["_begin"] is not None and w["_end"] is not None]
    t0 = res["_first_ts"] or 0
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.45 * max(len(ws), 1)))
    nper = sum(len(w["_periods"] or ()) // 2 for w in ws)
    if ws and nper <= 20000:
        for row, w in enumerate(ws):
            per = list(w["_periods"] or ())
            busy, cur = [], w["_begin"]
            for i in range(0, len(per), 2):
                s, e = per[i], per[i + 1]
                if s > cur:
                    busy.append(((cur - t0) / 1e6, (s - cur) / 1e6))
                cur = max(cur, e)
            if w["_end"] > cur:
                busy.append(((cur - t0) / 1e6, (w["_end"] - cur) / 1e6))
            ax.broken_barh([((w["_begin"] - t0) / 1e6, (w["_end"] - w["_begin"]) / 1e6)],
                           (row - 0.4, 0.8), color="#dddddd", linewidth=0)
            ax.broken_barh(busy, (row - 0.4, 0.8), color="tab:red", linewidth=0)
        ax.set_title("busy (red) / idle (grey) per worker")
    elif ws:
        # too many periods to draw one by one: the busy fraction in 1000 time bins
        end = max(w["_end"] for w in ws)
        edges = np.linspace(t0, end, 1001)
        img = np.full((len(ws), 1000), np.nan)
        for row, w in enumerate(ws):
            per = np.frombuffer(w["_periods"], dtype=np.int64)
            s, e = per[0::2], per[1::2]
            cum = np.concatenate(([0], np.cumsum(e - s)))

            def idle_upto(t):
                k = np.searchsorted(s, t, side="right")
                full = cum[k]
                last = np.where(k > 0, np.maximum(e[np.maximum(k - 1, 0)] - t, 0), 0)
                return full - last

            lo = np.clip(edges, w["_begin"], w["_end"])
            idle = np.diff(idle_upto(lo))
            span = np.diff(lo)
            with np.errstate(invalid="ignore", divide="ignore"):
                img[row] = np.where(span > 0, 1.0 - idle / span, np.nan)
        im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap="Reds", vmin=0, vmax=1,
                       extent=(0, (end - t0) / 1e6, len(ws) - 0.5, -0.5))
        fig.colorbar(im, ax=ax, label="busy fraction")
        ax.set_title("busy fraction per worker (1000 time bins)")
    else:
        ax.text(0.5, 0.5, "no workers", ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks(range(len(ws)))
    ax.set_yticklabels([f"worker {w['worker']}" for w in ws])
    ax.set_xlabel("ms since the first pel event")
    if ws:
        ax.set_ylim(len(ws) - 0.5, -0.5)
    fig.tight_layout()
    p = os.path.join(outdir, "timeline.png")
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return p
