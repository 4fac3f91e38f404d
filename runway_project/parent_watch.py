"""What `make run` starts (the worker, its beat, the web server and its reloader's child) stops when
`make run` does, however it ends: Ctrl-C, `kill`, the terminal closed, or `kill -9`.

run_local stops its children itself on the first three, but a process killed with SIGKILL runs no
code at all. On Linux a process can ask the kernel for a signal when its parent dies
(prctl PR_SET_PDEATHSIG): each process that run_local starts, directly or through another, asks
for SIGTERM (a worker's warm shutdown) as soon as it starts, when RUN_LOCAL_PID_ENV names the
run_local it belongs to. One that starts after run_local is already gone stops at once.

Elsewhere (macOS, say) there is no such call: run_local's own stop still works for every signal
it can catch. Only the standard library: it runs before Django is set up.
"""

import ctypes
import os
import signal
import sys

from runway_project.local_stack import pid_alive

RUN_LOCAL_PID_ENV = "RUNWAY_RUN_LOCAL_PID"
_PR_SET_PDEATHSIG = 1


def stop_with_parent() -> None:
    """When started under run_local (RUN_LOCAL_PID_ENV is set), be sent SIGTERM when this process's
    parent dies, and stop now if run_local is gone already. A no-op everywhere else."""
    owner = os.environ.get(RUN_LOCAL_PID_ENV, "")
    if not owner.isdigit() or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return  # refused (it never is on Linux): run_local's own stop still applies
    # The parent may have died before the call above, when it could no longer be told.
    if not pid_alive(int(owner)) or os.getppid() == 1:
        os.kill(os.getpid(), signal.SIGTERM)
