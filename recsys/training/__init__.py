"""Model training (TensorFlow, CatBoost). Never imported by the serving path.

TensorFlow Recommenders needs Keras 2: `TF_USE_LEGACY_KERAS=1` is set here, the ONE place, before any
module of this package imports tensorflow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
