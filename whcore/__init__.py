"""Shared core of whisper-harvest: workspace layout, run journal, records, errors.

Every stage (harvest, segment, label, finetune) uses these pieces and nothing
stage-specific lives here, so a reader finds the contract between stages in
one place.
"""
