"""The `tf-adapters` command (`[project.scripts]` in pyproject.toml).

It lives outside the package because `import tf_adapters` loads
TensorFlow (it registers the package's Keras classes), which `--help` and
bad flags must not wait for. It imports the argument parser with the
package's imports deferred (`tf_adapters.DEFERRED`), and clears the
variable at once so that the runs `compare` and `sweep` start, and any
other child process, import the package as usual; `tf_adapters.cli.main`
runs the deferred imports once the arguments are parsed.
`python -m tf_adapters.cli.main` works too, without the deferral.
"""

import os
import sys

# Read by `tf_adapters/__init__.py`.
DEFER_IMPORTS = "TF_ADAPTERS_DEFER_IMPORTS"


def main():
    os.environ[DEFER_IMPORTS] = "1"
    try:
        from tf_adapters.cli.main import main as run
    finally:
        del os.environ[DEFER_IMPORTS]
    return run()


if __name__ == "__main__":
    sys.exit(main())
