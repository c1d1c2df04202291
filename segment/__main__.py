from whcore.cli import run_main

from segment.cli import main

run_main(main, skip_teardown=True)  # whcore.cli.hard_exit says why
