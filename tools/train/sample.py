"""Find the largest Python files in a directory tree (sample for `forkcast complete`: the cursor is at the end)."""
import os
import sys


def list_python_files(root):
    """Return the paths of all .py files under root, sorted."""
    result = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.endswith(".py"):
                