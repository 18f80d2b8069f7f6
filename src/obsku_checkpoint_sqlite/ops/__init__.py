"""The operations, one module per subject, each a function ``op(conn, ...)`` over a blocking
SQLAlchemy ``Connection``.

Both faces run the same functions: a runner opens the transaction, calls the operation,
and commits. Nothing here knows engines, threads or event loops. An operation sets
execution options on its statements, never on the connection: runners keep connections
from one operation to the next. A job of several transactions (prune) is a generator of
``jobs.Step``s that a runner drives.
"""
