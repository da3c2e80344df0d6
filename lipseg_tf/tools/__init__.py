"""Tools run with `python -m lipseg_tf.tools.<name>`: demo (make demo), bench, tflite_bench, sample."""
