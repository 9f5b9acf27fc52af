"""What the job runner has the kernel of each notebook task run when it starts, so that
once the notebook is done the kernel ends without tearing its interpreter down.

A kernel asked to shut down runs its exit handlers (a Spark Connect session released,
an MLflow run ended), then Python finalises every module the notebook loaded (pyspark,
pandas, Great Expectations...): 0.5 to 3 s per task, all spent before papermill returns.
Exit handlers run in reverse order of registration, so the one registered when the
kernel starts runs after every handler the notebook's libraries registered, and ends the
process at once.

Standard library only, and no name left in the notebook's namespace: the kernel starts
no slower than before.
"""

from __future__ import annotations

import json

EXIT_AT_ONCE = "import atexit, os; atexit.register(os._exit, 0); del atexit, os"
KERNEL_ARGUMENT = f"--IPKernelApp.exec_lines={json.dumps([EXIT_AT_ONCE])}"
