"""Ferry's Python client: register Python functions by their source, run them on your endpoints,
move data by reference.

    from ferry import Client
    ferry = Client()                      # FERRY_URL / FERRY_TOKEN, or ~/.ferry/user.json
    fn = ferry.register(mean_of_slice)
    ferry.run(fn, ref, 0, 1 << 20, endpoint=endpoint_id)
"""

from .client import Batch, Client, ObjectRef
from .errors import FerryError, FunctionRefused, TaskCancelled, TaskFailed, WaitTimeout
from .executor import Executor

__all__ = ["Batch", "Client", "Executor", "FerryError", "ObjectRef", "FunctionRefused", "TaskCancelled", "TaskFailed", "WaitTimeout"]
__version__ = "0.1.0"
