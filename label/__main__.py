from whcore.cli import run_main

from label.cli import main

run_main(main)
