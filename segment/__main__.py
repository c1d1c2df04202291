from whcore.cli import run_main

from segment.cli import main

run_main(main)
