"""The checkout's folders that tests must leave alone, and a snapshot to prove they did."""

from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
GUARDED = ("build", "runs")


def snapshot_user_folders(root: Path = CHECKOUT) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file and folder under root's build/ and runs/."""
    state: dict[str, tuple[int, int]] = {}
    for name in GUARDED:
        top = root / name
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            state[str(path.relative_to(root))] = (0 if path.is_dir() else st.st_size, st.st_mtime_ns)
    return state


def changed_user_files(before: dict, after: dict) -> list[str]:
    """Paths created, changed or removed between two snapshots."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
