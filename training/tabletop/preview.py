"""A contact sheet of tabletop samples: start and goal side by side with the task and the steps
between them, so a person sees at a glance what the domain asks a planner to do."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.datasets.base import ProcedureDataset

_GAP, _PAD, _LINE = 8, 12, 18


def _font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans from matplotlib (always installed with it); PIL's own font otherwise."""
    try:
        from matplotlib import font_manager

        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size)


def contact_sheet(ds: ProcedureDataset, count: int = 6, columns: int = 2) -> Image.Image:
    """Up to `count` samples spread evenly over an images dataset, `columns` per row (spread, so
    a sheet shows several episodes rather than the windows of the first one)."""
    if ds.observation != "images":
        raise ValueError("a preview needs an images dataset (load_tabletop(..., observation='images'))")
    picks = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(count, len(ds)))}) if len(ds) else []
    samples = [ds.samples[i] for i in picks]
    if not samples:
        raise ValueError("no samples to preview")
    title, text = _font(15), _font(13)
    side = samples[0].start.shape[0]
    cell_w = 2 * side + _GAP + 2 * _PAD
    cell_h = side + _PAD * 2 + _LINE * (ds.horizon + 2)
    rows = (len(samples) + columns - 1) // columns
    sheet = Image.new("RGB", (cell_w * columns, cell_h * rows), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, sample in enumerate(samples):
        x0, y0 = (i % columns) * cell_w + _PAD, (i // columns) * cell_h + _PAD
        d.text((x0, y0), f"{ds.vocab.tasks[sample.task]}  (T={ds.horizon})", fill=(20, 20, 20), font=title)
        y = y0 + _LINE + 4
        sheet.paste(Image.fromarray(sample.start), (x0, y))
        sheet.paste(Image.fromarray(sample.goal), (x0 + side + _GAP, y))
        d.text((x0 + 4, y + 2), "start", fill=(255, 255, 255), font=text, stroke_width=2, stroke_fill=(0, 0, 0))
        d.text((x0 + side + _GAP + 4, y + 2), "goal", fill=(255, 255, 255), font=text, stroke_width=2, stroke_fill=(0, 0, 0))
        for t, label in enumerate(ds.step_labels(sample)):
            d.text((x0, y + side + 4 + t * _LINE), f"{t + 1}. {label}", fill=(30, 30, 90), font=text)
        if i % columns:
            d.line((x0 - _PAD, y0, x0 - _PAD, y0 + cell_h - 2 * _PAD), fill=(200, 200, 200))
    return sheet


def write_preview(ds: ProcedureDataset, path: str | Path, count: int = 6) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(ds, count).save(path)
    return path
