"""`tf-adapters` with length groups of 4 batches instead of 16.

`python docs/main_job_runs/group4.py finetune --group-by-length ...` runs
the command line with `tf_adapters.data.encoding.GROUP_BATCHES = 4`: how
the `grouped4_s*` runs of docs/main_job.md were made.
"""

import sys

import tf_adapters_cli
from tf_adapters.data import encoding

encoding.GROUP_BATCHES = 4
sys.exit(tf_adapters_cli.main())
