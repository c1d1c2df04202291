from whcore.cli import run_main

from harvest.cli import main

run_main(main)
