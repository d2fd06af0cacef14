"""The run directory: its schema, the writer that appends rows as levels finish, the reader (load_run) and drill-down."""
