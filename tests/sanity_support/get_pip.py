"""Stand-in for pip's get-pip.py bootstrap script, which ansible-test downloads from a host our
machines cannot reach.  ansible-test runs it in an empty venv as ``get_pip.py [pip options] pip==X``:
install the standard library's bundled pip, then the exact pip version asked for, from PyPI."""

import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap()
# ensurepip hides pip's configuration files by setting PIP_CONFIG_FILE in our environment;
# the real install must see them (they may name the certificate bundle or an index).
environment = {k: v for k, v in os.environ.items() if k != "PIP_CONFIG_FILE"}
# get-pip.py's own switches; pip install does not know them.
arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *arguments], env=environment)
