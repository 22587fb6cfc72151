"""Streaming classification for models that carry their state from one hop to the next.

A model with ``init_state(batch)`` and ``forward_stream(frames, state)`` (``srnn``) reads a
spectrogram frame by frame, so the Live tab need not run it over the whole window at every hop:
:class:`FrameStream` computes the window's features as before, gives the model only the frames
that are new since the previous hop, and keeps the model's state. A prediction is the class
scores of those new frames (spike counts or mean membranes, as the run's ``loss``/``predict``
say), after everything heard since the stream started.

Features are computed over the whole window and the new frames cut from near its end: the
last ``n_fft / 2`` samples' frames wait for the next hop (a centred STFT pads the window's
edge), so each frame fed is computed from real samples only (latency: ``n_fft / 2`` samples).
A clip-level normalisation (``normalise =
"per_clip"``) still uses this window's statistics, which a model trained with ``normalise =
"none"`` does not depend on.
"""

from __future__ import annotations

import numpy as np
import torch


def streams(predictor) -> bool:
    """Whether ``predictor``'s model can classify a stream frame by frame."""
    model = getattr(predictor, "model", None)
    cfg = getattr(predictor, "feature_config", None)
    return (
        callable(getattr(model, "forward_stream", None)) and cfg is not None and cfg.kind != "image"
    )


class FrameStream:
    """The model state of one stream; :meth:`step` classifies the frames new since the last call.

    ``predictor`` is an :class:`engine.train.checkpoint.Predictor` (its ``model``, ``config``,
    ``feature_config`` and ``class_names``).
    """

    def __init__(self, predictor):
        self.predictor = predictor
        self.model = predictor.model
        self.state = None
        self.position: float | None = None  # end of the last window, in samples at the model rate
        self.frames_fed = 0
        self.last_frames: np.ndarray | None = None

    def reset(self) -> None:
        self.state, self.position, self.frames_fed = None, None, 0

    @torch.no_grad()
    def step(self, y: np.ndarray, end: float):
        """Classify the frames of window ``y`` (at the model's rate, ending at sample ``end``)
        that the previous call did not see; returns a ``Prediction``."""
        from engine.audio.features import compute_features
        from engine.audio.load import fit_length
        from engine.models.registry import class_scores
        from engine.train.checkpoint import Prediction

        fc = self.predictor.feature_config
        feats = compute_features(fit_length(np.asarray(y, np.float32), fc.n_samples(), "trim"), fc)
        total = feats.shape[1]
        lag = min(total - 1, fc.n_fft // (2 * fc.hop_length))  # edge frames: next hop
        if self.position is None:
            new = total - lag
        else:
            new = int(round((end - self.position) / fc.hop_length))
            new = min(max(new, 1), total - lag)
        self.position = end if self.position is None else self.position + new * fc.hop_length
        self.frames_fed += new
        self.last_frames = feats[:, total - lag - new : total - lag]  # [F, new], for display
        self.model.eval()
        device = next(self.model.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(self.last_frames[None, None])).to(device)
        out, self.state = self.model.forward_stream(x, self.state)
        cfg = self.predictor.config
        logits, decision = class_scores(out, cfg.loss, cfg.predict)
        index = int(decision.argmax(1)[0])
        return Prediction(
            label=self.predictor.class_names[index],
            index=index,
            probs=torch.softmax(logits.float(), 1)[0].cpu().numpy().astype(np.float32),
            output_spikes=out.spikes[:, 0].cpu().numpy().astype(np.uint8),
        )
