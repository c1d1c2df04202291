from finetune.cli import main
from whcore.cli import run_main

run_main(main)
