"""Live audio: capture devices, the sliding-window classifier, listening, recording clips."""
