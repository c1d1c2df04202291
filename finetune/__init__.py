"""finetune: fine-tune Whisper on a whisper-harvest dataset and export it.

Reads label's Parquet dataset, an ``audiofolder`` (or a hand-written CSV), packs windows into
30-second inputs, evaluates the starting model, trains with a plan sized for
the GPU (or CPU), checkpoints through the run journal so a rerun resumes,
and exports a transformers model, a CTranslate2 copy, a model card and
training curves.
"""
