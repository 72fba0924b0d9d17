"""A contact sheet of one episode: per step, the frame at its start and the frame at its end,
with the label and the times, so whoever wrote the steps file sees whether the times are right."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.episodes.frames import Recording
from training.episodes.layout import EpisodeSpec

THUMB_HEIGHT, PAD, TEXT_WIDTH = 120, 8, 360


def step_sheet(spec: EpisodeSpec, recording: Recording) -> Image.Image:
    """One row per step: start frame | end frame | "n. label (start-end s)"."""
    nearest = [int(np.abs(recording.times - t).argmin()) for step in spec.steps for t in (step.start_s, step.end_s)]
    frames = dict(recording.read(sorted(set(nearest))))
    height, width = recording.size
    thumb_width = max(1, round(width * THUMB_HEIGHT / height))
    font = ImageFont.load_default(13)
    sheet = Image.new("RGB", (2 * thumb_width + TEXT_WIDTH + 4 * PAD, (THUMB_HEIGHT + PAD) * len(spec.steps) + 3 * PAD + 16),
                      "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), f"{spec.name}: {spec.task} ({spec.split})", fill="black", font=font)
    for row, step in enumerate(spec.steps):
        y = 2 * PAD + 16 + row * (THUMB_HEIGHT + PAD)
        for column, index in enumerate(nearest[2 * row:2 * row + 2]):
            thumb = Image.fromarray(frames[index]).resize((thumb_width, THUMB_HEIGHT), Image.Resampling.BILINEAR)
            sheet.paste(thumb, (PAD + column * (thumb_width + PAD), y))
        text = f"{row + 1}. {step.label}\n{step.start_s:.2f} - {step.end_s:.2f} s (line {step.line})"
        draw.multiline_text((3 * PAD + 2 * thumb_width, y + PAD), text, fill="black", font=font)
    return sheet
