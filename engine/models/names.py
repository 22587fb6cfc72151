"""Model names without importing torch, for command-line choices (tests keep it equal to
``engine.models.registry.MODELS``)."""

MODEL_NAMES = (
    "fc_snn",
    "csnn",
    "csnn_avg",
    "cnn",
    "scnn_gap",
    "cnn_gap",
    "srnn",
    "rnn",
    "resnet50",
    "resnet101",
    "efficientnet_b0",
    "vgg16",
    "densenet121",
    "mobilenet_v2",
)
