"""One module per tab. ``TABS`` lists them in order: (name, title, module, class).

A panel is a QWidget built as ``Panel(context)``. Optional methods the main window calls:

- ``restore_state(settings)`` / ``save_state(settings)``: last-used parameters (a QSettings
  already in the panel's group).
- ``prepare_screenshot(options: dict)``: fill the panel with its default content for
  ``snn-explorer screenshot`` (may start work); ``screenshot_ready() -> bool`` tells when done.
- ``shutdown()``: stop any running job and wait for its thread (called on window close).
"""

TABS = [
    ("neuron", "Neuron", "app.panels.neuron", "NeuronPanel"),
    ("encoding", "Encoding", "app.panels.encoding", "EncodingPanel"),
    ("data", "Data", "app.panels.data", "DataPanel"),
    ("builder", "AudioSet builder", "app.panels.builder", "BuilderPanel"),
    ("training", "Training", "app.panels.training", "TrainingPanel"),
    ("live", "Live", "app.panels.live", "LivePanel"),
]
