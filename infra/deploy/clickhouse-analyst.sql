-- The ClickHouse user analysts' SQL (POST /api/sql, `tonglu sql`) runs as on a server.
-- Run once as an administrator (clickhouse-client --multiquery < clickhouse-analyst.sql), then set
--   TONGLU_CLICKHOUSE_ANALYST_URL=http://tonglu_analyst:<password>@clickhouse:8123/tonglu
-- for the projector (which serves the API). Replace the password; rename `tonglu` if the database differs.
--
-- Tonglu vets every statement on ClickHouse's syntax tree first (one SELECT/WITH/SHOW/DESCRIBE over
-- tonglu's tables, no table functions but numbers/zeros/generate_series, no system tables, no
-- dictionaries, no SETTINGS/FORMAT/INTO OUTFILE). This user is the second lock: should a statement
-- slip past that check, the server itself lets it read tonglu and nothing else, within these limits.

CREATE SETTINGS PROFILE IF NOT EXISTS tonglu_analyst SETTINGS
    -- 2, not 1: the API sends each query's limits as settings; the analyst cannot send any.
    readonly = 2 CONST,
    max_execution_time = 10 MAX 300,
    timeout_overflow_mode = 'throw' CONST,
    max_result_rows = 100000 MAX 10000000,
    max_result_bytes = 100000000 MAX 1000000000,
    result_overflow_mode = 'throw' CONST,
    max_memory_usage = 2000000000 MAX 16000000000,
    cancel_http_readonly_queries_on_client_close = 1,
    allow_introspection_functions = 0 CONST,
    allow_ddl = 0 CONST;

CREATE USER IF NOT EXISTS tonglu_analyst IDENTIFIED WITH sha256_password BY 'change-me'
    DEFAULT DATABASE tonglu
    SETTINGS PROFILE 'tonglu_analyst';

-- Reading tonglu's tables and views is all it may do: no FILE, URL, S3, REMOTE, MYSQL, ... source
-- grants, no dictionaries, no other database, no KILL QUERY (the projector's own user stops
-- analyst queries whose client went away).
GRANT SELECT ON tonglu.* TO tonglu_analyst;

-- numbers()/zeros() on a server need this grant; without it they are refused and the rest works.
-- GRANT CREATE TEMPORARY TABLE ON *.* TO tonglu_analyst;

-- Recommended in the server's config.xml, so system tables need a grant too (this user gets none):
--   <access_control_improvements><select_from_system_db_requires_grant>true</select_from_system_db_requires_grant>
--   <select_from_information_schema_requires_grant>true</select_from_information_schema_requires_grant></access_control_improvements>
