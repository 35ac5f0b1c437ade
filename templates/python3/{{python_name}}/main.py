"""An example tool of the {{name}} plugin.

Run it in the plugin environment:
    mfenv plugin wrapper {{name}} -- {{name}}_hello
"""

import os


def greeting():
    """The greeting of the plugin configuration ([custom] greeting)."""
    module = os.environ.get("MFMODULE", "GENERIC")
    return os.environ.get(module + "_CURRENT_PLUGIN_CUSTOM_GREETING", "hello")


def main():
    print("%s from {{name}} {{version}}" % greeting())


if __name__ == "__main__":
    main()
