import sys

from controller.cli import main

if __name__ == "__main__":  # the simulator's process is spawned and re-imports __main__
    sys.exit(main())
