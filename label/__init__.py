"""label: pseudo-label segmented windows with Whisper, filter them, build the dataset.

Reads ``windows/<id>/windows.jsonl`` (segment) and ``sources/<id>.json``
(harvest), writes ``labels/<id>.jsonl`` (one LabelRecord per window, kept and
rejected) and rebuilds ``dataset/`` (Hugging Face audiofolder, train/test).
"""
