"""`python -m bench.child SUITE KWARGS_JSON`: one benchmark run in its own
process (memory is returned to the system between runs); prints the
result as one JSON line, with how busy the machine was meanwhile
(`load`, see `bench.load`)."""

import json
import sys

from bench import generate
from bench import load
from bench import serve
from bench import train

RUNS = {
    "train": train.run,
    "memory": train.memory,
    "generate": generate.run,
    "serve": serve.run,
}


def main():
    suite, kwargs = sys.argv[1], json.loads(sys.argv[2])
    before = load.snapshot()
    result = RUNS[suite](**kwargs)
    result["load"] = load.during(before, load.snapshot())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
