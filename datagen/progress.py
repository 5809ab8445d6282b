"""A rich progress bar for subjects: count, subjects/s and ETA."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class SubjectProgress:
    def __init__(self, total: int, done: int, enabled: bool = True):
        self.failed = 0
        self._progress = Progress(
            TextColumn("[bold]datagen"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} subjects/s"),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            disable=not enabled,
        )
        self._progress.start()
        self._task = self._progress.add_task("subjects", total=total, completed=done, rate="-", failed=0)
        self._start_done = done

    def advance(self, failed: bool = False) -> None:
        self.failed += int(failed)
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        done_now = task.completed + 1 - self._start_done
        rate = f"{done_now / elapsed:.2f}" if elapsed > 0 else "-"
        self._progress.update(self._task, advance=1, rate=rate, failed=self.failed)

    def close(self) -> None:
        self._progress.stop()
