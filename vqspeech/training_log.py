"""What a training loop reports while it runs, shared by ``vqspeech train``, ``train-prior`` and
``train-vocoder``: tensorboard scalars, the progress bar, the throughput (whole run and steady)
and the summary file, all on the main process only."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .errors import UserError
from .fileio import atomic_write


class ThroughputMeter:
    """Seconds of audio trained on per wall-clock second, for the whole run and *steady*: from the
    end of the first log window on, which leaves out what only the first steps pay (compiles,
    cuDNN's timing of new shapes, the loader's workers starting).

    Call :meth:`add` after each step and :meth:`end_window` where a log window ends, after
    something that waits for the device (a ``.item()``), so that queued kernels are counted."""

    def __init__(self):
        self.start = time.perf_counter()
        self.audio_seconds = 0.0
        self.steady: float | None = None   # None until a second window has ended
        self._first_window: tuple[float, float] | None = None  # (time, audio seconds) at its end

    def add(self, audio_seconds: float) -> None:
        self.audio_seconds += audio_seconds

    def end_window(self) -> float:
        """Update and return the whole run's rate (audio seconds per second)."""
        now = time.perf_counter()
        overall = self.audio_seconds / max(now - self.start, 1e-9)
        if self._first_window is None:
            self._first_window = (now, self.audio_seconds)
        else:
            t, done = self._first_window
            self.steady = (self.audio_seconds - done) / max(now - t, 1e-9)
        return overall

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.start


def describe_throughput(overall: float, steady: float | None) -> str:
    """``"12.34 s audio/s (15.67 after the first log window)"``, as the training commands print it."""
    after = "" if steady is None else f" ({steady:.2f} after the first log window)"
    return f"{overall:.2f} s audio/s{after}"


class RunLog:
    """The reporting side of one training run from ``start_step``: a tensorboard writer and a tqdm
    bar on the main process (``None`` elsewhere, where every call is a no-op but the meter still
    counts), and a :class:`ThroughputMeter`."""

    def __init__(self, d, exp_dir: Path, progress: bool, max_steps: int, start_step: int, desc: str):
        self.is_main = d.is_main
        self.writer = tensorboard_writer(exp_dir, start_step) if d.is_main else None
        self.bar = progress_bar(progress and d.is_main, max_steps, start_step, desc)
        self.meter = ThroughputMeter()
        self.start_step = start_step

    def step_done(self, audio_seconds: float) -> None:
        """One optimiser step over ``audio_seconds`` of audio (all ranks together)."""
        self.meter.add(audio_seconds)
        if self.bar is not None:
            self.bar.update(1)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def end_window(self, values: dict[str, float], step: int, **postfix: str) -> float:
        """Close a log window: the throughput joins ``values`` (tensorboard) and ``postfix`` (the
        bar); returns the whole run's rate.  Call it after something has waited for the device."""
        overall = self.meter.end_window()
        self.scalars({**values, "throughput/audio_seconds_per_second": overall}, step)
        if self.bar is not None:
            self.bar.set_postfix(**postfix, rt=f"{overall:.2f}x")
        return overall

    @property
    def steady(self) -> float | None:
        return self.meter.steady

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def should_summarise(self, step: int) -> bool:
        """Whether this run trained at all (a run that resumed at its last step keeps the summary it had)."""
        return self.is_main and step > self.start_step

    def write_summary(self, path: Path, summary: dict) -> None:
        with atomic_write(path) as fh:
            json.dump(summary, fh, indent=2)


def progress_bar(show: bool, total: int, initial: int, desc: str):
    """A tqdm bar when ``show``, else None."""
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)


def tensorboard_writer(exp_dir: Path, start_step: int):
    """A SummaryWriter on ``exp_dir/tensorboard`` that drops events after ``start_step`` (a resumed run
    rewrites them); a UserError when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("training writes tensorboard logs and needs tensorboard: "
                        "pip install 'vqspeech[train]' (or run 'make setup')") from None
    return SummaryWriter(str(exp_dir / "tensorboard"), purge_step=start_step or None)
