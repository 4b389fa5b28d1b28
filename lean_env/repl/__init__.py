"""A pool of leanprover-community REPL processes speaking the blank-line JSON protocol."""

from lean_env.repl.pool import ReplPool
from lean_env.repl.process import ReplCrashed, ReplError, ReplProcess, ReplProtocolError, ReplTimeout

__all__ = ["ReplCrashed", "ReplError", "ReplPool", "ReplProcess", "ReplProtocolError", "ReplTimeout"]
