"""Model training (TensorFlow, CatBoost). Never imported by the serving path.

TensorFlow Recommenders needs Keras 2: `TF_USE_LEGACY_KERAS=1` is set here, the ONE place, before any
module of this package imports tensorflow. `import_tensorflow()` is how this package imports it.
"""

import os
import sys
import tempfile
from types import ModuleType

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF reports real failures as Python exceptions


def import_tensorflow() -> ModuleType:
    """Import tensorflow and probe its devices with the native stderr silenced.

    TensorFlow's C++ runtime writes start-up notices (no CUDA driver, oneDNN) straight to file
    descriptor 2 before its log level applies, which would scatter them through the CLI's output. They
    are captured instead, and replayed only if the import fails.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe, which logs when there is no GPU
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf
