"""Transformer chatbot: a small encoder-decoder trained on real chit-chat conversations."""
