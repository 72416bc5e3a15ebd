"""Team mode: the PostgreSQL store (:mod:`.store`), its schema and migrations (:mod:`.schema`,
``migrations/``), a run's journal and files in the database (:mod:`.sync`) and the import
of a state directory (:mod:`.importer`).  Needs the ``team`` extra (psycopg, psycopg-pool,
alembic)."""
