"""Dataset sources (tensorflow-datasets when reachable, offline sources otherwise) and tf.data helpers."""
