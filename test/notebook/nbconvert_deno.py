"""nbconvert settings for executing notebooks on Deno's Jupyter kernel: pass `--config` this file.

Deno's kernel can publish a cell's last outputs (its execute_result, a last console.log line or
display) a fraction of a millisecond *after* the cell's `status: idle` message. nbclient stops
listening for a cell's outputs at idle and drops what comes later, so an executed notebook loses
outputs at random (a third of the execute_results on a busy 2-core machine). This keeps listening
for a short grace period after idle. Interactive frontends do not need it.
"""

import queue
import time

GRACE_SECONDS = 0.5

try:
    from nbclient.client import NotebookClient
    from nbclient.exceptions import CellExecutionComplete
    from nbclient.util import ensure_async
except ImportError:  # another nbclient layout: run without the grace period
    NotebookClient = None

if NotebookClient is not None and hasattr(NotebookClient, "_async_poll_output_msg"):

    async def _poll_output_msg_with_grace(self, parent_msg_id, cell, cell_index):
        deadline = None
        while True:
            timeout = None
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return
            try:
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                continue
            if deadline is not None and msg["msg_type"] == "status":
                continue
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                deadline = time.monotonic() + GRACE_SECONDS

    NotebookClient._async_poll_output_msg = _poll_output_msg_with_grace
