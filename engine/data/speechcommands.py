"""Speech Commands (v0.01/v0.02) as published: ``speechcommands:PATH``.

Layout::

    PATH/<word>/<speaker>_nohash_<n>.wav      one-second clips, 16 kHz
    PATH/validation_list.txt                  official validation clips (``word/file.wav``)
    PATH/testing_list.txt                     official test clips
    PATH/_background_noise_/*.wav             minute-long noise recordings

Every word folder is a class; a clip listed in ``testing_list.txt`` is test, in
``validation_list.txt`` val, else train; the speaker id (before ``_nohash_``) is the group.
The background recordings are no class: ``source.background_dir`` names their folder, for
augmentation (``augment.background_dir``) or a "background" class cut from them by the user.
"""

from __future__ import annotations

import os

from engine.audio.load import audio_info
from engine.data.source import AudioSource, Item
from engine.errors import DataError

__all__ = ["BACKGROUND", "SpeechCommandsSource", "speechcommands_source"]

BACKGROUND = "_background_noise_"
LISTS = {"testing_list.txt": "test", "validation_list.txt": "val"}


class SpeechCommandsSource(AudioSource):
    """An :class:`AudioSource` with the folder of background recordings (or None)."""

    background_dir: str | None = None


def _read_list(path: str) -> set[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return {line.strip().replace("\\", "/") for line in fh if line.strip()}
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the split list ({exc})") from None


def speechcommands_source(path: str, spec: str | None = None) -> SpeechCommandsSource:
    """Open a Speech Commands folder with its official split (see the module docstring)."""
    spec = spec or f"speechcommands:{path}"
    if not os.path.isdir(path):
        raise DataError(f"{spec}: {path} is not a folder")
    split_of: dict[str, str] = {}
    for name, split in LISTS.items():
        full = os.path.join(path, name)
        if not os.path.isfile(full):
            raise DataError(f"{spec}: no {name} in {path} (is this a Speech Commands folder?)")
        split_of.update(dict.fromkeys(_read_list(full), split))
    words = sorted(
        n
        for n in os.listdir(path)
        if not n.startswith((".", "_")) and os.path.isdir(os.path.join(path, n))
    )
    if not words:
        raise DataError(f"{spec}: no word folders in {path}")
    items, infos, skipped = [], [], []
    for label, word in enumerate(words):
        for name in sorted(os.listdir(os.path.join(path, word))):
            full = os.path.join(path, word, name)
            if not name.lower().endswith(".wav"):
                if os.path.isfile(full):
                    skipped.append((full, "not a .wav clip"))
                continue
            try:
                info = audio_info(full)
            except DataError as exc:
                skipped.append((full, str(exc).removeprefix(f"{full}: ")))
                continue
            speaker = name.split("_nohash_")[0] if "_nohash_" in name else None
            split = split_of.get(f"{word}/{name}", "train")
            items.append(Item(full, label, split, speaker, len(items)))
            infos.append(info)
    present = {it.label for it in items}
    empty = [w for i, w in enumerate(words) if i not in present]
    if empty:
        raise DataError(f"{spec}: word folder {empty[0]!r} holds no readable clip")
    source = SpeechCommandsSource(spec, words, items, infos, skipped, group_splits=False)
    background = os.path.join(path, BACKGROUND)
    source.background_dir = background if os.path.isdir(background) else None
    return source
