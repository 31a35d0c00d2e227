"""Custom image classifier: transfer learning (or training from scratch) on your own folder of images."""
