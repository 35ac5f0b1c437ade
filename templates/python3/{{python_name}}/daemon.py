"""An example daemon of the {{name}} plugin (see [extra_daemon_example] in config.ini).

It runs until stopped, logging a line every minute.
"""

import signal
import sys
import time


def main():
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    while True:
        print("{{name}} daemon alive", flush=True)
        time.sleep(60)


if __name__ == "__main__":
    main()
