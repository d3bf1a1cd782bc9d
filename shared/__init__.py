"""Code both the API and the worker need: settings, database, tables, job states, storage."""
