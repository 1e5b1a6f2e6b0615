-- Early builds of 0001 also created an `ordering_keys` counter table. Sequences are now max(sequence) + 1
-- under a per-key advisory lock, so the schema holds only the tables listed in docs/architecture.md.
DROP TABLE IF EXISTS ordering_keys;
