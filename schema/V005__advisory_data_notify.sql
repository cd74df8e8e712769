-- V005: tell readers (the advisory API) when the advisory data changed.
--
-- One NOTIFY per writing statement (not per row) on channel advisory_data; PostgreSQL
-- folds identical notifications of one transaction into one and delivers them at commit,
-- so a crawl's transactions cost one small message each. The payload is the table name;
-- readers re-check their data version on any message (and poll it as a fallback).

CREATE FUNCTION advisory_data_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('advisory_data', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;

CREATE TRIGGER advisories_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON advisories
    FOR EACH STATEMENT EXECUTE FUNCTION advisory_data_notify();

CREATE TRIGGER advisory_versions_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON advisory_versions
    FOR EACH STATEMENT EXECUTE FUNCTION advisory_data_notify();

CREATE TRIGGER changes_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION advisory_data_notify();
