"""status: what a workspace holds and what a rerun of each stage would redo, read from its journal.

``logs/log.txt`` is the product's record of work: every finished unit is a DONE line
with its options and files, every failed, rejected or skipped one a line with why.
``status`` reads only that (plus a stat of the files the DONE lines list), so it is
cheap, needs no model and never takes the workspace lock.
"""
