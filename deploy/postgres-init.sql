-- Prefect's own database beside the product's, with the extension Prefect's PostgreSQL schema needs.
CREATE DATABASE prefect OWNER incident;
\connect prefect
CREATE EXTENSION IF NOT EXISTS pg_trgm;
