"""Matplotlib figures of the flow (Agg backend, PNG files): the report's confusion matrix, the
programming pulse histogram and the sweep's accuracy / cost panels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_confusion", "plot_pulse_histogram", "plot_sweep", "plot_write_margins", "pyplot",
           "value_label"]


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend; imported on first use since matplotlib is
    heavy and only the plotting commands need it."""
    import matplotlib  # heavy (~0.5 s): only the plotting commands need it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"), as above
    return plt


def plot_confusion(path: Path, cm: np.ndarray, title: str) -> None:
    """The confusion matrix as a PNG: cells shaded by the fraction of the true class, counts written in."""
    plt = pyplot()

    k = cm.shape[0]
    rows = cm.sum(axis=1, keepdims=True)
    frac = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    side = min(max(4.5, 0.55 * k + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(side + 1.2, side), dpi=110)
    try:
        im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
        if k <= 30:
            size = 9 if k <= 12 else 7
            for t in range(k):
                for p in range(k):
                    ax.text(p, t, str(cm[t, p]), ha="center", va="center", fontsize=size,
                            color="white" if frac[t, p] > 0.5 else "black")
        step = max(1, k // 30)
        ticks = np.arange(0, k, step)
        ax.set_xticks(ticks)
        ax.set_yticks(ticks)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=10, wrap=True)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def plot_pulse_histogram(pulses: np.ndarray, path: str | Path, title: str = "pulses per cell") -> Path:
    """Histogram of the program pulses each cell received (write-verify cost), as a PNG."""
    plt = pyplot()

    counts = np.asarray(pulses, dtype=np.int64).ravel()
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    try:
        edges = np.arange(counts.max() + 2) - 0.5
        ax.hist(counts, bins=edges, color="#3b6ea8")
        ax.set_yscale("log")
        ax.set_xlabel("program pulses received")
        ax.set_ylabel("cells")
        ax.set_title(f"{title}: mean {counts.mean():.2f}, max {counts.max()}, {counts.size} cells",
                     fontsize=10)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def plot_write_margins(v_selected: np.ndarray, v_disturb: np.ndarray, path: str | Path,
                       title: str = "write margins") -> Path:
    """Histogram of the per-cell write margin, as a PNG: the smallest |V| a cell's memristor saw
    when it was the selected cell, minus the largest |V| it saw while another cell was pulsed
    (cells that were never pulsed are left out)."""
    plt = pyplot()

    sel = np.asarray(v_selected, dtype=np.float64).ravel()
    dis = np.asarray(v_disturb, dtype=np.float64).ravel()
    pulsed = np.isfinite(sel)
    margin = sel[pulsed] - dis[pulsed]
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    try:
        if margin.size:
            ax.hist(margin, bins=60, color="#a8553b")
            ax.set_title(f"{title}: min {margin.min():.3f} V, selected >= {sel[pulsed].min():.4f} V, "
                         f"disturb <= {dis.max():.3f} V", fontsize=9)
        else:
            ax.set_title(f"{title}: no pulsed cells", fontsize=9)
        ax.set_yscale("log")
        ax.set_xlabel("write margin: min |V| selected - max |V| half-selected (V)")
        ax.set_ylabel("cells")
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def plot_sweep(rows: list[dict], keys: list[str], path: Path) -> None:
    """sweep.png: golden accuracy, energy and TOPS/W against the first swept key, one line per
    combination of the others."""
    plt = pyplot()

    x_key, others = keys[0], keys[1:]
    xs = list(dict.fromkeys(value_label(r[x_key]) for r in rows))
    numeric = all(isinstance(r[x_key], (int, float)) and not isinstance(r[x_key], bool) for r in rows)
    panels = (("golden_accuracy", "golden accuracy (full test set)"),
              ("energy_pj", "energy per inference (pJ)"), ("tops_per_w", "TOPS/W"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), constrained_layout=True)
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(value_label(r[k]) for k in others), []).append(r)
    for ax, (col, title) in zip(axes, panels):
        for combo, members in groups.items():
            xv = [m[x_key] if numeric else xs.index(value_label(m[x_key])) for m in members]
            label = ", ".join(f"{k}={v}" for k, v in zip(others, combo)) or None
            ax.plot(xv, [m[col] for m in members], marker="o", label=label)
        ax.set_xlabel(x_key)
        ax.set_title(title)
        if not numeric:
            ax.set_xticks(range(len(xs)), xs)
        ax.grid(alpha=0.3)
        if others:
            ax.legend(fontsize=7)
    fig.suptitle("xbarflow sweep: " + " x ".join(keys))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def value_label(v: Any) -> str:
    """A swept value as a label (lists as JSON)."""
    return json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
