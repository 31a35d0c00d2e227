"""Serving the exported SavedModels: an embedded TF Serving-compatible server (REST and gRPC), a client, a Gradio demo.

The model repository is TF Serving's own layout, `<root>/<model>/<version>/saved_model.pb`
with `<root>/models.config`, so the real `tensorflow/serving` container
(`docker-compose.yml`) serves the same folder.
"""
