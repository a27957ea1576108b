-- A small application in the api schema, created by the migrator as app_owner.
-- Used by make demo and by the gateway's lab tests.
SET ROLE app_owner;
CREATE TABLE api.customers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE api.orders (
  id int PRIMARY KEY,
  customer_id int NOT NULL REFERENCES api.customers (id),
  total numeric NOT NULL
);
INSERT INTO api.customers VALUES (1, 'Ada'), (2, 'Grace');
INSERT INTO api.orders VALUES (10, 1, 9.5), (11, 1, 20), (12, 2, 7);
CREATE FUNCTION api.add(a int, b int) RETURNS int LANGUAGE sql AS $$ SELECT a + b $$;
