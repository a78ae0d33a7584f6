-- Issue 3: why each attempt was made (first, retry, failover, hedge, ...).
ALTER TABLE attempts ADD COLUMN reason TEXT NOT NULL DEFAULT '';
