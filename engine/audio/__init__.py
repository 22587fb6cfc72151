"""Sound files to features: loading, MFCC / log-mel, the feature cache, augmentation."""
