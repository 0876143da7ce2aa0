-- A model's evaluations are read by strategy name (`model NAME@VERSION`),
-- newest first: the dashboard's comparison of two versions' test figures.
CREATE INDEX backtests_by_strategy ON backtests (strategy, created_ms);
