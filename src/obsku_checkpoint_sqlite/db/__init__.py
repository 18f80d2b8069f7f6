"""The database: column types, tables, prebuilt queries, row mapping, and schema versions.

``db.migrate`` is the public tooling API for schema versions; the rest serves the
operations in ``ops``.
"""
